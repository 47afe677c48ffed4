"""A simulated crowd for rehearsals: the participants who post by hand, from their own
accounts, around T — through the platforms' own APIs on the simulator, as their apps would.

A storm is mostly such people, not the storm's accounts, and they are not punctual. How
late they post is an assumption, not a measurement (no public data on storms' timing was
found): a few break the embargo by up to 2 minutes, most post within the first minutes
after T (log-normal, median 2 minutes), and a tail runs up to an hour. A rehearsal compresses
that into seconds (`seconds_per_minute`), so `stormer impact` has a crowd to count.

Mastodon and Bluesky only: they are what `impact` can read back on the simulator.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stormer.storm import Storm

EARLY_SHARE = 0.07  # those who post before T (the embargo broken)
EARLY_MINUTES = 2.0  # by up to this much
MEDIAN_MINUTES = 2.0  # the rest: log-normal, median 2 min …
SIGMA = 1.0  # … and a spread where 1 in 10 comes after about 7 min
LAST_MINUTE = 60.0  # nobody later than this
PLATFORMS = ("mastodon", "bluesky")


@dataclass(frozen=True, slots=True)
class CrowdPost:
    minutes: float  # from T, in storm minutes (negative: before T)
    platform: str
    person: int
    text: str
    lang: str


def plan_crowd(storm: Storm, people: int, rng: random.Random) -> list[CrowdPost]:
    """One post per person, by hand: a sample post of a language the storm has, on Mastodon
    or Bluesky, at a time drawn from the spread above; sorted by time."""
    from stormer.channels import registry

    fitting = {
        name: [
            p
            for p in storm.posts
            if storm.hashtag.lower() in p.text.lower()
            and (plugin := registry.get(name)).length(p.text) <= plugin.text_limit
        ]
        for name in PLATFORMS
    }
    platforms = [name for name in PLATFORMS if fitting[name]]
    posts = []
    for person in range(people if platforms else 0):
        if rng.random() < EARLY_SHARE:
            minutes = -rng.uniform(0.0, EARLY_MINUTES)
        else:
            minutes = min(rng.lognormvariate(0.0, SIGMA) * MEDIAN_MINUTES, LAST_MINUTE)
        platform = rng.choice(platforms)
        sample = rng.choice(fitting[platform])
        posts.append(CrowdPost(minutes, platform, person, sample.text, sample.lang))
    return sorted(posts, key=lambda p: p.minutes)


@dataclass
class Crowd:
    """The crowd posting from a process of its own (people are on other machines: their
    posting must not take the storm's worker's interpreter lock at T), given its plan on
    stdin and answering on stdout; `join` waits for its last post and collects what landed."""

    sim: str
    at: datetime
    posts: list[CrowdPost]
    seconds_per_minute: float
    remote_ids: set[str] = field(default_factory=set)  # what landed: not the storm's posts
    failures: list[str] = field(default_factory=list)
    _process: Any = None

    def start(self) -> Crowd:
        import subprocess
        import sys

        plan = [{"at": self.instant(p), "post": asdict(p)} for p in self.posts]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "stormer.ops.crowd", self.sim],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(plan))
        self._process.stdin.close()
        self._process.stdin = None  # given: `communicate` must not write or flush it again
        return self

    def join(self, timeout: float | None = None) -> None:
        if self._process is None:
            return
        import subprocess

        try:
            out, _ = self._process.communicate(timeout=timeout)
            done = json.loads(out or "{}")
        except (subprocess.TimeoutExpired, ValueError):
            self._process.kill()
            done = {"failures": ["the crowd did not finish in time"]}
        self.remote_ids.update(done.get("landed", []))
        self.failures.extend(done.get("failures", []))
        self._process = None

    def instant(self, post: CrowdPost) -> float:
        return self.at.timestamp() + post.minutes * self.seconds_per_minute


def run_crowd(sim: str, plan: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The crowd's process: each post at its instant; what landed and what failed."""
    import httpx

    landed: list[str] = []
    failures: list[str] = []
    with httpx.Client(base_url=sim, timeout=10) as http:
        for entry in plan:
            post = CrowdPost(**entry["post"])
            time.sleep(max(0.0, entry["at"] - time.time()))
            try:
                landed.append(_post(http, post))
            except (httpx.HTTPError, KeyError, ValueError) as e:
                failures.append(f"crowd post {post.person} on {post.platform}: {e}")
    return {"landed": landed, "failures": failures}


def _post(http: object, post: CrowdPost) -> str:
    """Post as person `post.person` would from their app; the id the platform gave it."""
    import httpx

    assert isinstance(http, httpx.Client)
    if post.platform == "mastodon":
        # https://docs.joinmastodon.org/methods/statuses/#create
        r = http.post(
            "/api/v1/statuses",
            headers={"Authorization": f"Bearer crowd-person-{post.person}-token"},
            json={"status": post.text, "visibility": "public", "language": post.lang},
        )
        r.raise_for_status()
        return str(r.json()["id"])
    from stormer.richtext import bluesky_facets
    from stormer.timezones import iso_utc

    handle = f"crowd{post.person}.example.org"
    session = http.post(
        "/xrpc/com.atproto.server.createSession",
        json={"identifier": handle, "password": f"crowd-{post.person}-app-password"},
    )
    session.raise_for_status()
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": post.text,
        "createdAt": iso_utc(datetime.now().astimezone()),
        "langs": [post.lang],
    }
    if facets := bluesky_facets(post.text):
        record["facets"] = facets
    r = http.post(
        "/xrpc/com.atproto.repo.createRecord",
        headers={"Authorization": f"Bearer {session.json()['accessJwt']}"},
        json={"repo": session.json()["did"], "collection": "app.bsky.feed.post", "record": record},
    )
    r.raise_for_status()
    return str(r.json()["uri"])


if __name__ == "__main__":  # the crowd's own process (`Crowd.start`)
    print(json.dumps(run_crowd(sys.argv[1], json.load(sys.stdin))))
