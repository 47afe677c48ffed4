"""`stormer impact`: the hashtag's public posts read back from each platform's search, with
pagination, rate limits and the window's edges; counts only, unless the organizer asks.

The platforms are answered through httpx.MockTransport, each as its documentation describes:
Mastodon's tag timeline (Link-header pagination, newest first, at most 40 a page), Bluesky's
searchPosts through the account's PDS (cursor, signed in), X's recent search (a 403 for an
access level without search)."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from example import CREDENTIALS, copy_example
from typer.testing import CliRunner

from stormer.channels.search import SeenPost
from stormer.ops import impact as ops
from stormer.ops.impact_summary import render, summarize
from stormer.storm import load_storm
from stormer.timezones import iso_utc

T = datetime(2031, 3, 13, 18, 0, tzinfo=UTC)
HOST = "social.example.org"  # the example storm's Mastodon accounts are both here


def status(
    n: int, at: datetime, *, acct: str = "", lang: str = "en", reblogs: int = 0
) -> dict[str, Any]:
    """A Status entity (https://docs.joinmastodon.org/entities/Status/), the fields read."""
    acct = acct or f"user{n}"
    return {
        "id": str(n),
        "uri": f"https://{HOST}/users/{acct}/statuses/{n}",
        "url": f"https://{HOST}/@{acct}/{n}",
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "language": lang,
        "reblogs_count": reblogs,
        "account": {"acct": acct},
        "content": "<p>must not be kept</p>",
    }


class FakeNet:
    """The platforms of the example storm, as far as `impact` reads them."""

    def __init__(self, statuses: list[dict[str, Any]], *, page_size: int = 40) -> None:
        self.statuses = sorted(statuses, key=lambda s: s["created_at"], reverse=True)
        self.page_size = page_size
        self.requests: list[httpx.Request] = []
        self.rate_limit_first = False
        self.mastodon_needs_token = False
        self.bluesky: list[dict[str, Any]] = []
        self.x_status = 403

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        host, path = request.url.host, request.url.path
        query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        if path.startswith("/api/v1/timelines/tag/"):
            return self.tag_timeline(request, query)
        if path == "/xrpc/com.atproto.server.createSession":
            handle = json.loads(request.content)["identifier"]
            return httpx.Response(200, json=session(handle))
        if path == "/xrpc/app.bsky.feed.searchPosts":
            return self.search_posts(request, query)
        if host == "api.x.com" and path == "/2/users/me":
            return httpx.Response(200, json={"data": {"id": "42", "username": "campaign"}})
        if host == "api.x.com" and path == "/2/tweets/search/recent":
            # An app without search in its access level (docs.x.com, client-not-enrolled).
            return httpx.Response(
                self.x_status,
                json={
                    "title": "Client Forbidden",
                    "reason": "client-not-enrolled",
                    "detail": "This endpoint is not part of your access level",
                },
            )
        return httpx.Response(404, json={"error": f"no {path}"})

    def tag_timeline(self, request: httpx.Request, query: dict[str, str]) -> httpx.Response:
        if self.rate_limit_first:
            self.rate_limit_first = False
            return httpx.Response(
                429, headers={"Retry-After": "7"}, json={"error": "Too many requests"}
            )
        if self.mastodon_needs_token and "authorization" not in request.headers:
            return httpx.Response(422, json={"error": "This method requires an authenticated user"})
        limit = min(int(query.get("limit", 20)), 40)
        older = [
            s for s in self.statuses if "max_id" not in query or int(s["id"]) < int(query["max_id"])
        ]
        # ids grow with time here, so "older than max_id" is the next page
        older.sort(key=lambda s: int(s["id"]), reverse=True)
        chunk = older[: min(limit, self.page_size)]
        headers = {}
        if chunk and len(older) > len(chunk):
            tag = request.url.path.rsplit("/", 1)[-1]
            nxt = (
                f"https://{HOST}/api/v1/timelines/tag/{tag}?limit={limit}&max_id={chunk[-1]['id']}"
            )
            headers["Link"] = f'<{nxt}>; rel="next", <https://{HOST}/x?min_id=1>; rel="prev"'
        return httpx.Response(200, json=chunk, headers=headers)

    def search_posts(self, request: httpx.Request, query: dict[str, str]) -> httpx.Response:
        if not request.headers.get("authorization", "").startswith("Bearer acc-"):
            return httpx.Response(
                401, json={"error": "AuthenticationRequired", "message": "sign in"}
            )
        start = int(query.get("cursor", "0"))
        chunk = self.bluesky[start : start + 2]  # small pages: the cursor is exercised
        body: dict[str, Any] = {"posts": chunk}
        if start + 2 < len(self.bluesky):
            body["cursor"] = str(start + 2)
        return httpx.Response(200, json=body)


def session(handle: str) -> dict[str, Any]:
    did = f"did:plc:{handle.split('.')[0]}"
    return {
        "accessJwt": f"acc-{handle}-long-enough",
        "refreshJwt": f"ref-{handle}-long-enough",
        "handle": handle,
        "did": did,
        "didDoc": {
            "id": did,
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": "https://pds.example.org",
                }
            ],
        },
    }


def bsky_post(
    n: int, at: datetime, *, handle: str = "someone.example.org", reposts: int = 0
) -> dict[str, Any]:
    return {
        "uri": f"at://did:plc:p{n}/app.bsky.feed.post/3k{n:011d}",
        "cid": f"cid{n}",
        "author": {"did": f"did:plc:p{n}", "handle": handle},
        "record": {
            "$type": "app.bsky.feed.post",
            "text": "x",
            "createdAt": iso_utc(at),
            "langs": ["es"],
        },
        "repostCount": reposts,
        "indexedAt": iso_utc(at),
    }


@pytest.fixture
def storm_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value + "-long-enough")
    monkeypatch.setenv(
        "FPS_DISCORD_WEBHOOK_URL", "https://discord.com/api/webhooks/7/tok-discord-long"
    )
    monkeypatch.setattr("keyring.get_password", lambda *args: None)
    return copy_example(tmp_path / "storm", at=iso_utc(T))


def measure(
    storm_dir: Path, net: FakeNet, **kw: Any
) -> tuple[ops.Measurement, list[tuple[float, str]]]:
    waits: list[tuple[float, str]] = []

    async def wait(seconds: float, why: str) -> None:
        waits.append((seconds, why))

    async def go() -> ops.Measurement:
        storm = load_storm(storm_dir)
        assert storm.at is not None
        async with httpx.AsyncClient(transport=httpx.MockTransport(net)) as http:
            return await ops.measure(
                storm,
                since=storm.at - timedelta(hours=1),
                until=storm.at + timedelta(hours=3),
                http=http,
                wait=wait,
                **kw,
            )

    return asyncio.run(go()), waits


def minutes(*offsets: float) -> list[datetime]:
    return [T + timedelta(minutes=m) for m in offsets]


def test_the_tag_timeline_is_read_page_by_page_to_the_windows_start_and_no_further(
    storm_dir: Path,
) -> None:
    # 95 posts inside the window (pages of 40: three pages), one exactly at its start
    # (inclusive), one at its end (exclusive), and older ones that must not be fetched.
    inside = [status(100 + i, T + timedelta(seconds=30 * i)) for i in range(95)]
    edge_start = status(99, T - timedelta(hours=1))
    edge_end = status(300, T + timedelta(hours=3))
    older = [status(n, T - timedelta(hours=2, minutes=n)) for n in range(1, 90)]
    net = FakeNet([*inside, edge_start, edge_end, *older])
    measurement, waits = measure(storm_dir, net)
    got = {p.uri for p in measurement.posts if p.platform == "mastodon"}
    assert got == {s["uri"] for s in [*inside, edge_start]}
    pages = [r for r in net.requests if "/timelines/tag/" in r.url.path]
    # 97 statuses reach back to the start: 3 pages; the 4th page holds only older ones, and
    # it is the one that shows the start was passed — nothing after it is asked for.
    assert len(pages) == 3 or (len(pages) == 4 and "max_id" in str(pages[-1].url))
    assert all("authorization" not in r.headers for r in pages)  # public: no token sent
    assert pages[0].url.path == "/api/v1/timelines/tag/FreePalestinianStudents"
    assert pages[0].url.params["limit"] == "40"
    source = next(s for s in measurement.sources if s.where == HOST)
    assert source.measured and source.posts == 96
    assert waits == []


def test_a_rate_limited_page_waits_as_the_instance_says_and_is_asked_again(storm_dir: Path) -> None:
    net = FakeNet([status(1, T)])
    net.rate_limit_first = True
    measurement, waits = measure(storm_dir, net)
    assert waits == [(7.0, "mastodon rate limit")]
    assert [p.uri for p in measurement.posts if p.platform == "mastodon"] == [status(1, T)["uri"]]


def test_an_instance_that_shows_tags_only_to_signed_in_users_gets_the_accounts_token(
    storm_dir: Path,
) -> None:
    net = FakeNet([status(1, T)])
    net.mastodon_needs_token = True
    measurement, _ = measure(storm_dir, net)
    tagged = [r for r in net.requests if "/timelines/tag/" in r.url.path]
    assert "authorization" not in tagged[0].headers
    assert tagged[1].headers["authorization"] == "Bearer tok-m-long-enough"
    assert len(measurement.posts) == 1


def test_an_instance_without_an_account_refusing_says_why(storm_dir: Path) -> None:
    net = FakeNet([status(1, T)])
    net.mastodon_needs_token = True
    measurement, _ = measure(storm_dir, net, instances=["other.example.net"])
    other = next(s for s in measurement.sources if s.where == "other.example.net")
    assert not other.measured
    assert "signed-in users" in (other.reason or "") and "422" in (other.reason or "")


def test_bluesky_is_searched_signed_in_through_the_accounts_pds_with_the_window(
    storm_dir: Path,
) -> None:
    net = FakeNet([])
    net.bluesky = [bsky_post(n, t) for n, t in enumerate(minutes(0, 0.5, 1, 2, 200), 1)]
    measurement, _ = measure(storm_dir, net)
    searches = [r for r in net.requests if r.url.path.endswith("searchPosts")]
    assert {r.url.host for r in searches} == {"pds.example.org"}
    first = searches[0].url.params
    assert (first["q"], first["tag"], first["sort"]) == (
        "#FreePalestinianStudents",
        "FreePalestinianStudents",
        "latest",
    )
    assert (first["since"], first["until"]) == (
        iso_utc(T - timedelta(hours=1)),
        iso_utc(T + timedelta(hours=3)),
    )
    assert [r.url.params.get("cursor") for r in searches] == [None, "2", "4"]
    # The one at T + 200 min is outside the window even if the AppView's sortAt let it in.
    assert len([p for p in measurement.posts if p.platform == "bluesky"]) == 4
    # One search for the whole network, not one per Bluesky account.
    assert len({r.url.params.get("cursor") for r in searches}) == len(searches)


def test_platforms_without_search_are_reported_not_measured_with_the_reason(
    storm_dir: Path,
) -> None:
    measurement, _ = measure(storm_dir, FakeNet([]))
    reasons = {s.where: s.reason for s in measurement.sources if not s.measured}
    assert "HTTP 403" in (reasons["X"] or "") and "access level" in (reasons["X"] or "")
    assert "bot" in (reasons["Telegram"] or "")
    assert "webhook" in (reasons["Discord"] or "")
    assert "joined" in (reasons["Matrix"] or "")


def test_x_recent_search_reaches_back_seven_days_only(storm_dir: Path) -> None:
    old = copy_example(storm_dir.parent / "old", at="2021-03-11T18:00:00Z")
    net = FakeNet([])
    measurement, _ = measure(old, net)
    x = next(s for s in measurement.sources if s.where == "X")
    assert not x.measured and "7 days" in (x.reason or "")
    assert not any(r.url.path.startswith("/2/tweets/search") for r in net.requests)


def seen(
    n: int,
    at: datetime,
    *,
    platform: str = "mastodon",
    author: str = "",
    reshares: int = 0,
    lang: str = "en",
) -> SeenPost:
    return SeenPost(
        platform,
        f"uri-{platform}-{n}",
        f"https://p.example/{n}",
        author or f"@a{n}",
        at,
        lang,
        reshares,
    )


def test_the_summary_counts_per_minute_authors_languages_and_our_share() -> None:
    posts = [
        seen(1, T - timedelta(seconds=1)),  # minute -1
        seen(2, T, author="@a1"),  # minute 0, same author as 1
        seen(3, T + timedelta(seconds=59)),  # minute 0
        seen(4, T + timedelta(minutes=1), lang="ar", reshares=5),  # minute 1
        seen(5, T + timedelta(minutes=1), platform="bluesky", reshares=9),
    ]
    m = ops.Measurement("s", "#Tag", T - timedelta(hours=1), T + timedelta(hours=3), T, [], posts)
    impact = summarize(m, at=T, ours={"uri-mastodon-3"})
    mastodon = next(p for p in impact.platforms if p.platform == "mastodon")
    assert (mastodon.posts, mastodon.authors, mastodon.ours) == (4, 3, 1)
    assert dict(mastodon.per_minute) == {-1: 1, 0: 2, 1: 1}
    assert mastodon.peak == (0, 2)
    assert dict(mastodon.languages) == {"en": 3, "ar": 1}
    assert [p.reshares for p in impact.top] == [9, 5]
    text = "\n".join(render(impact))
    assert "@a" not in text and "author" not in json.dumps(impact.as_json()["most_reshared"])
    assert "https://p.example/" not in text  # a link names its author: not by default…
    linked = "\n".join(render(summarize(m, at=T, ours={"uri-mastodon-4"})))
    assert "https://p.example/4 (5 reshares, ours)" in linked  # …except our own posts
    assert "https://p.example/5" not in linked and "a post on bluesky (9 reshares)" in linked
    shown = summarize(m, at=T, ours=set(), show_authors=True)
    assert "@a4" in "\n".join(render(shown))


def test_measurements_are_kept_owner_only_and_merged_without_counting_a_post_twice(
    storm_dir: Path,
) -> None:
    storm = load_storm(storm_dir)
    window = (T - timedelta(hours=1), T + timedelta(hours=3))
    first = ops.Measurement(
        storm.slug,
        storm.hashtag,
        *window,
        T,
        [ops.Source("mastodon", HOST, True, 2)],
        [seen(1, T), seen(2, T, reshares=1)],
    )
    later = ops.Measurement(
        storm.slug,
        storm.hashtag,
        *window,
        T + timedelta(hours=1),
        [ops.Source("mastodon", HOST, True, 2)],
        [seen(2, T, reshares=8), seen(3, T)],
    )
    path = ops.store(storm, first)
    ops.store(storm, later)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    kept = ops.load_stored(storm)
    assert kept is not None
    assert sorted((p.uri, p.reshares) for p in kept.posts) == [
        ("uri-mastodon-1", 0),
        ("uri-mastodon-2", 8),
        ("uri-mastodon-3", 0),
    ]


def test_the_command_counts_and_keeps_then_rebuilds_offline_without_naming_anyone(
    storm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stormer.cli import app

    net = FakeNet(
        [status(n, T + timedelta(seconds=n), acct=f"person{n}", reblogs=n) for n in range(1, 6)]
    )
    real = httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(net), **kwargs)

    monkeypatch.setattr("stormer.dispatch.connect.client", client)
    runner = CliRunner()
    online = runner.invoke(app, ["impact", "-s", str(storm_dir)])
    assert online.exit_code == 0, online.output
    assert "mastodon: 5 post(s) by 5 author(s); ours 0 (0%)" in online.output
    assert "person" not in online.output
    assert "X: not measured" in online.output
    offline = runner.invoke(app, ["impact", "--offline", "--json", "-s", str(storm_dir)])
    assert offline.exit_code == 0, offline.output
    doc = json.loads(offline.stdout)
    assert doc["platforms"][0]["posts"] == 5 and "person" not in offline.stdout
    named = runner.invoke(app, ["impact", "--offline", "--show-authors", "-s", str(storm_dir)])
    assert "@person5@social.example.org" in named.output


def test_offline_before_any_measurement_says_what_to_run(storm_dir: Path) -> None:
    from stormer.cli import app

    result = CliRunner().invoke(app, ["impact", "--offline", "-s", str(storm_dir)])
    assert result.exit_code != 0
    assert "run `stormer impact`" in str(result.exception) + result.output


@pytest.mark.parametrize(
    "value", ["../../etc", "en", "x" * 300, "mastodon social", "ftp://a.example"]
)
def test_an_instance_that_is_no_host_name_is_a_usage_error(storm_dir: Path, value: str) -> None:
    from stormer.cli import app

    result = CliRunner().invoke(app, ["impact", "--instance", value, "-s", str(storm_dir)])
    assert result.exit_code == 2 and "--instance" in result.output


def test_instances_named_in_config_are_read_too_and_a_bad_one_is_a_problem_on_its_line(
    storm_dir: Path,
) -> None:
    from stormer.cli import app

    config = storm_dir / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text + '\n[impact]\ninstances = ["other.example.net"]\n', encoding="utf-8")
    net = FakeNet([status(1, T)])
    measurement, _ = measure(storm_dir, net, instances=load_storm(storm_dir).impact_instances)
    assert "other.example.net" in {s.where for s in measurement.sources}
    assert any(r.url.host == "other.example.net" for r in net.requests)

    config.write_text(text + '\n[impact]\ninstances = ["not a host"]\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "-s", str(storm_dir)])
    assert result.exit_code == 1
    said = str(result.exception)
    assert f"config.toml:{len(text.splitlines()) + 3}: error" in said and "impact.instances" in said
    assert "'not a host' is not a Mastodon instance" in said


def test_on_a_terminal_a_line_per_place_counts_posts_and_waits_count_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from stormer.cli.impact import _Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    with _Progress() as progress:
        progress.page("mastodon.social", 40)
        progress.page("mastodon.social", 12)
        asyncio.run(progress.wait(0.6, "mastodon rate limit"))
    shown = screen.getvalue()
    assert "reading mastodon.social: 52 post(s)" in shown
    assert "mastodon rate limit: 1 s to wait, as the platform asks" in shown

    plain = io.StringIO()  # not a terminal: nothing per page, one line per wait
    monkeypatch.setattr("sys.stderr", plain)
    with _Progress() as progress:
        progress.page("mastodon.social", 40)
        asyncio.run(progress.wait(0.1, "mastodon rate limit"))
    assert plain.getvalue() == "  mastodon rate limit: waiting 0 s, as the platform asks\n"
