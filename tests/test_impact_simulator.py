"""`stormer impact` against the simulator: a crowd posts under the hashtag through the
platforms' own APIs (as people posting by hand do), and impact reads it back page by page,
through the instance's rate limit, counting ours apart from everyone else's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from example import CREDENTIALS, copy_example, point_accounts_at

from stormer.ops import impact as ops
from stormer.ops.impact_summary import summarize
from stormer.storm import load_storm
from stormer.timezones import iso_utc

TAG = "FreePalestinianStudents"


@pytest.fixture
def storm_dir(tmp_path: Path, simulator: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_example(tmp_path / "storm", at=iso_utc(datetime.now(UTC).replace(microsecond=0)))
    point_accounts_at(root, simulator)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value + "-long-enough")
    monkeypatch.setenv("FPS_DISCORD_WEBHOOK_URL", f"{simulator}/api/webhooks/7/tok-discord-long")
    monkeypatch.setattr("keyring.get_password", lambda *args: None)
    return root


def mastodon_crowd(sim: str, tagged: int) -> None:
    """`tagged` public posts with the hashtag from as many people, plus posts the tag
    timeline must leave out: another tag, a longer tag, and an unlisted one."""
    with httpx.Client(base_url=sim, timeout=10) as http:

        def post(token: str, text: str, visibility: str = "public") -> None:
            r = http.post(
                "/api/v1/statuses",
                headers={"Authorization": f"Bearer {token}"},
                json={"status": text, "visibility": visibility, "language": "en"},
            )
            r.raise_for_status()

        for n in range(tagged):
            post(f"crowd-{n}-token", f"Free them now #{TAG.lower() if n % 2 else TAG}")
        post("crowd-x-token", "#SomethingElse entirely")
        post("crowd-y-token", f"#{TAG}Now is another tag")
        post("crowd-z-token", f"quiet #{TAG}", visibility="unlisted")


def bluesky_crowd(sim: str, tagged: int, at: list[datetime] | None = None) -> None:
    """`tagged` posts with the hashtag (created at the instants `at`, else now) and one
    without."""
    now = datetime.now(UTC)
    with httpx.Client(base_url=sim, timeout=10) as http:
        for n in range(tagged + 1):
            handle = f"crowd{n}.example.org"
            session = http.post(
                "/xrpc/com.atproto.server.createSession",
                json={"identifier": handle, "password": "app-password-long"},
            ).json()
            text = f"#{TAG} now" if n < tagged else "no tag here"
            facets = (
                [
                    {
                        "index": {"byteStart": 0, "byteEnd": len(TAG) + 1},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": TAG}],
                    }
                ]
                if n < tagged
                else []
            )
            http.post(
                "/xrpc/com.atproto.repo.createRecord",
                headers={"Authorization": f"Bearer {session['accessJwt']}"},
                json={
                    "repo": session["did"],
                    "collection": "app.bsky.feed.post",
                    "record": {
                        "$type": "app.bsky.feed.post",
                        "text": text,
                        "createdAt": iso_utc(at[n] if at and n < tagged else now),
                        "langs": ["es"],
                        "facets": facets,
                    },
                },
            ).raise_for_status()


def test_impact_reads_the_crowd_back_through_pagination_and_the_rate_limit(
    storm_dir: Path, simulator: str
) -> None:
    # One tag-timeline request a second per address (the instance's per-IP limit, scaled
    # down): the second page is refused once and read after the wait the instance names.
    httpx.post(
        f"{simulator}/_sim/config", json={"rate_limit": {"mastodon": {"limit": 1, "window_s": 1.0}}}
    ).raise_for_status()
    mastodon_crowd(simulator, tagged=45)  # over one page of 40
    bluesky_crowd(simulator, tagged=3)
    storm = load_storm(storm_dir)
    assert storm.at is not None
    waits: list[float] = []

    async def wait(seconds: float, why: str) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    measurement = asyncio.run(
        ops.measure(
            storm,
            since=storm.at - timedelta(hours=1),
            until=storm.at + timedelta(hours=3),
            wait=wait,
        )
    )
    sources = {s.where: s for s in measurement.sources}
    assert sources["127.0.0.1"].measured and sources["127.0.0.1"].posts == 45, sources
    assert waits and all(0 < w <= 3 for w in waits)  # waited as told, not given up
    assert sources["Bluesky"].measured and sources["Bluesky"].posts == 3
    impact = summarize(measurement, at=storm.at, ours=set())
    counts = {p.platform: (p.posts, p.authors) for p in impact.platforms}
    assert counts == {"mastodon": (45, 45), "bluesky": (3, 3)}


def test_an_instance_with_public_preview_off_is_read_with_the_accounts_token(
    storm_dir: Path, simulator: str
) -> None:
    httpx.post(
        f"{simulator}/_sim/config", json={"mastodon_tags_need_token": True}
    ).raise_for_status()
    mastodon_crowd(simulator, tagged=2)
    storm = load_storm(storm_dir)
    assert storm.at is not None
    anonymous = httpx.get(f"{simulator}/api/v1/timelines/tag/{TAG}")
    assert anonymous.status_code == 422
    measurement = asyncio.run(
        ops.measure(storm, since=storm.at - timedelta(hours=1), until=storm.at + timedelta(hours=1))
    )
    assert {s.where: s.posts for s in measurement.sources if s.platform == "mastodon"} == {
        "127.0.0.1": 2
    }


def test_bluesky_search_refuses_without_a_session(simulator: str) -> None:
    r = httpx.get(f"{simulator}/xrpc/app.bsky.feed.searchPosts", params={"q": f"#{TAG}"})
    assert r.status_code == 401


def test_the_windows_edges_on_the_simulator(storm_dir: Path, simulator: str) -> None:
    """A post created exactly at the window's start counts; one created exactly at its end
    does not, though the AppView's `sortAt` (the earlier of createdAt and indexedAt: now)
    lets it through `until`; one created before the start is not returned at all."""
    storm = load_storm(storm_dir)
    assert storm.at is not None
    since, until = storm.at - timedelta(hours=1), storm.at + timedelta(hours=3)
    bluesky_crowd(simulator, tagged=3, at=[since, until, since - timedelta(seconds=1)])
    measurement = asyncio.run(ops.measure(storm, since=since, until=until))
    got = sorted(p.created_at for p in measurement.posts if p.platform == "bluesky")
    assert got == [since]
