"""The platform contract: one suite, every capability, every plugin — against the simulator
for all six platforms, and against the real servers that run here (a Bluesky PDS, Synapse).

Each capability is asserted from the server's side too: what really landed, and how often
(the simulator's `/_sim/posts`; the PDS's listRecords; the Matrix room's messages).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from example import REPO

from stormer.channels import registry
from stormer.channels.base import Connection, Platform, Published
from stormer.dispatch.sending import reconcile, send_staged
from stormer.errors import AuthError, OutcomeUnknown, RateLimited, Rejected
from stormer.queue import MediaRef, QueueItem
from stormer.secrets import Secret
from stormer.storm import Account

PLATFORMS = ["mastodon", "bluesky", "x", "telegram", "discord", "matrix"]
# A text over each platform's limit, as that platform counts it.
TOO_LONG = {
    "mastodon": "a" * 501,
    "bluesky": "b" * 301,
    "x": "c" * 281,
    "telegram": "d" * 4097,
    "discord": "e" * 2001,
    "matrix": "f" * 70_000,
}
IMAGE = MediaRef(
    "images/flag-book.png", "Bands of black, white and green with a red triangle", 800, 418
)
# The request that creates a post, per platform: the one whose answer a test may "lose".
POSTING = {
    "mastodon": "/api/v1/statuses",
    "bluesky": "com.atproto.repo.putRecord",
    "x": "/2/tweets",
    "telegram": "/send",
    "discord": "/webhooks/",  # /api/v10/webhooks/…: stormer sends on the current version
    "matrix": "/send/m.room.message/",
}


@dataclass
class Backend:
    """One server speaking one platform's API: how to be an account there, and what landed."""

    platform: str
    url: str
    kind: str  # "simulator" or the real server's name
    last: dict[str, Any] = field(default_factory=dict)

    def account(self, *, bad: bool = False) -> tuple[Account, dict[str, Secret]]:
        raise NotImplementedError

    def landed(self) -> list[dict[str, Any]]:
        """Posts that landed: [{text, media: [{alt}]}]."""
        raise NotImplementedError


class Simulated(Backend):
    def account(self, *, bad: bool = False) -> tuple[Account, dict[str, Secret]]:
        p, sim = self.platform, self.url
        token = f"{'invalid' if bad else 'tok'}{uuid.uuid4().hex[:12]}SECRET"
        fields: dict[str, Any] = {"base_url": sim, "target": None, "handle": None}
        if p == "bluesky":
            fields["handle"] = f"u{uuid.uuid4().hex[:8]}.test"
            creds = {"app_password": token}
        elif p == "telegram":
            fields["target"] = "@storm_channel"
            creds = {"bot_token": token if bad else f"12345:{token}"}
        elif p == "discord":
            fields["base_url"] = None
            creds = {"webhook_url": f"{sim}/api/webhooks/4242/{token}"}
        elif p == "matrix":
            fields["target"] = "!room:sim" if bad else _sim_room(sim, token)
            creds = {"access_token": token}
        else:
            creds = {"access_token": token}
        return _account(p, fields, creds)

    def landed(self) -> list[dict[str, Any]]:
        return [
            p for p in httpx.get(f"{self.url}/_sim/posts").json() if p["platform"] == self.platform
        ]


def _sim_room(sim: str, token: str) -> str:
    r = httpx.post(
        f"{sim}/_matrix/client/v3/createRoom",
        json={"name": "storm"},
        headers={"Authorization": f"Bearer {token}"},
    )
    r.raise_for_status()
    return str(r.json()["room_id"])


def _account(
    platform: str, fields: dict[str, Any], creds: dict[str, str]
) -> tuple[Account, dict[str, Secret]]:
    account = Account(
        name=f"{platform}-contract",
        platform=platform,
        langs=("en",),
        credentials=tuple((k, k.upper()) for k in creds),
        line=None,
        **fields,
    )
    return account, {k: Secret(v) for k, v in creds.items()}


class RealPds(Backend):
    def __init__(self, pds: Any) -> None:
        super().__init__("bluesky", pds.url, "Bluesky PDS")
        self.pds = pds

    def account(self, *, bad: bool = False) -> tuple[Account, dict[str, Secret]]:
        handle, password, did = self.pds.create_account("contract")
        self.last = {"did": did}
        fields = {"base_url": self.url, "target": None, "handle": handle}
        return _account(
            "bluesky", fields, {"app_password": f"invalid-{password}SECRET" if bad else password}
        )

    def landed(self) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.url}/xrpc/com.atproto.repo.listRecords",
            params={"repo": self.last["did"], "collection": "app.bsky.feed.post"},
        )
        r.raise_for_status()
        out = []
        for record in r.json()["records"]:
            value = record["value"]
            images = (value.get("embed") or {}).get("images") or []
            out.append({"text": value["text"], "media": [{"alt": i["alt"]} for i in images]})
        return out


class RealSynapse(Backend):
    def __init__(self, synapse: Any) -> None:
        super().__init__("matrix", synapse.url, "Synapse")
        self.synapse = synapse

    def account(self, *, bad: bool = False) -> tuple[Account, dict[str, Secret]]:
        user_id, password = self.synapse.register(f"c{uuid.uuid4().hex[:8]}")
        token = self.synapse.login(user_id, password)
        room = self.synapse.create_room(token)
        self.last = {"token": token, "room": room, "user": user_id}
        fields = {"base_url": self.url, "target": room, "handle": None}
        return _account(
            "matrix", fields, {"access_token": f"invalid{token}SECRET" if bad else token}
        )

    def landed(self) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.url}/_matrix/client/v3/rooms/{self.last['room']}/messages",
            params={"dir": "b", "limit": "100"},
            headers={"Authorization": f"Bearer {self.last['token']}"},
        )
        r.raise_for_status()
        out = []
        for event in r.json()["chunk"]:
            if event["type"] != "m.room.message" or event["sender"] != self.last["user"]:
                continue
            content = event["content"]
            if content.get("msgtype") == "m.image":
                # Spec v1.10 media captions: body ≠ filename is a caption, the post's text.
                captioned = content.get("filename") not in (None, content.get("body"))
                text = content.get("body") if captioned else None
                out.append({"text": text, "media": [{"alt": content.get("body")}]})
            else:
                out.append({"text": content.get("body"), "media": []})
        return out


@pytest.fixture(params=[*(f"simulator-{p}" for p in PLATFORMS), "real-bluesky", "real-matrix"])
def backend(request: pytest.FixtureRequest) -> Backend:
    name = request.param
    if name == "real-bluesky":
        return RealPds(request.getfixturevalue("bluesky_pds"))
    if name == "real-matrix":
        return RealSynapse(request.getfixturevalue("synapse"))
    return Simulated(
        name.removeprefix("simulator-"), request.getfixturevalue("simulator"), "simulator"
    )


@pytest.fixture(params=PLATFORMS)
def simulated(request: pytest.FixtureRequest, simulator: str) -> Backend:
    return Simulated(request.param, simulator, "simulator")


class LoseAnswerOnce(httpx.AsyncBaseTransport):
    """Forwards every request to the real transport, but drops the answer to the first
    post-creating request: the post exists on the server, the client sees a timeout."""

    def __init__(self, marker: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.marker = marker
        self.armed = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.armed and self.marker in str(request.url) and request.method in ("POST", "PUT"):
            self.armed = False
            await response.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


Flow = Callable[[Platform, Connection], Awaitable[Any]]


def run(
    backend: Backend,
    flow: Flow,
    *,
    bad: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Any:
    account, credentials = backend.account(bad=bad)

    async def main() -> Any:
        async with httpx.AsyncClient(timeout=20, transport=transport) as client:
            conn = Connection(
                account=account, client=client, credentials=credentials, media_root=REPO / "posts"
            )
            return await flow(registry.get(backend.platform), conn)

    return asyncio.run(main())


def item(platform: str, text: str, media: tuple[MediaRef, ...] = ()) -> QueueItem:
    return QueueItem(
        id=uuid.uuid4().hex[:16],
        kind="post",
        fire_at=datetime.now(UTC),
        platform=platform,
        account=f"{platform}-contract",
        lang="en",
        text=text,
        media=media,
    )


def a_text() -> str:
    return f"Free them all, {uuid.uuid4().hex[:6]} #FreePalestinianStudents"


def test_publish_text(backend: Backend) -> None:
    text = a_text()

    async def flow(plugin: Platform, conn: Connection) -> Published:
        await plugin.verify(conn)
        staged = await plugin.stage(item(backend.platform, text), conn)
        return await plugin.confirm(await plugin.publish(staged, conn), conn)

    published = run(backend, flow)
    assert [p["text"] for p in backend.landed()] == [text]
    assert published.remote_id


def test_publish_with_image_and_alt_text(backend: Backend) -> None:
    text = a_text()

    async def flow(plugin: Platform, conn: Connection) -> Published:
        staged = await plugin.stage(item(backend.platform, text, (IMAGE,)), conn)
        return await plugin.publish(staged, conn)

    run(backend, flow)
    landed = backend.landed()
    assert text in [p["text"] for p in landed]
    media = [m for p in landed for m in p["media"]]
    assert media, "the image did not arrive"
    if registry.get(backend.platform).alt_text:
        assert IMAGE.alt in [m.get("alt") for m in media]


def test_a_lost_answer_never_becomes_a_second_post(backend: Backend) -> None:
    """The post is created but its answer lost: OutcomeUnknown; reconciling finds it (or says
    it cannot know) — and the platform holds exactly one post either way."""
    text = a_text()

    async def flow(plugin: Platform, conn: Connection) -> Any:
        staged = await plugin.stage(item(backend.platform, text), conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)
        return await reconcile(plugin, staged, conn, attempts=3, sleep=asyncio.sleep)

    found = run(backend, flow, transport=LoseAnswerOnce(POSTING[backend.platform]))
    assert [p["text"] for p in backend.landed()].count(text) == 1
    if registry.get(backend.platform).idempotency == "none":
        assert found is None  # Telegram, Discord webhooks: cannot know → unconfirmed
    else:
        assert isinstance(found, Published)


def test_rate_limit_is_reported_and_honoured(simulated: Backend) -> None:
    # The suite's real servers run with their limits raised (Synapse) or off (the PDS); their
    # own 429s are tested below: test_rate_limit_on_real_synapse, test_rate_limit_on_real_pds.
    def limit(n: int) -> None:
        httpx.post(
            f"{simulated.url}/_sim/config",
            json={"rate_limit": {simulated.platform: {"limit": n, "window_s": 1.0}}},
        ).raise_for_status()

    async def flow(plugin: Platform, conn: Connection) -> Any:
        first = await plugin.stage(item(simulated.platform, a_text()), conn)
        second = await plugin.stage(item(simulated.platform, a_text()), conn)
        limit(1)
        await plugin.publish(first, conn)
        with pytest.raises(RateLimited) as info:
            await plugin.publish(second, conn)
        assert 0 < info.value.retry_after <= 5
        return await send_staged(plugin, second, conn, attempts=5)

    result = run(simulated, flow)
    assert result.outcome == "sent" and result.attempts >= 2
    assert len(simulated.landed()) == 2


def test_bad_credentials_are_an_auth_error_without_the_token(backend: Backend) -> None:
    async def flow(plugin: Platform, conn: Connection) -> None:
        with pytest.raises(AuthError) as info:
            await plugin.verify(conn)
        assert "SECRET" not in str(info.value) and "SECRET" not in repr(info.value)

    run(backend, flow, bad=True)


def test_too_long_is_rejected_for_good(backend: Backend) -> None:
    async def flow(plugin: Platform, conn: Connection) -> None:
        staged = await plugin.stage(item(backend.platform, TOO_LONG[backend.platform]), conn)
        with pytest.raises(Rejected):
            await plugin.publish(staged, conn)

    run(backend, flow)
    assert backend.landed() == []


def test_rate_limit_on_real_synapse(request: pytest.FixtureRequest) -> None:
    """Synapse's own 429: the suite's server runs with raised limits, so this account gets a
    strict per-user override through the admin API (one message per second)."""
    backend = RealSynapse(request.getfixturevalue("synapse"))
    account, credentials = backend.account()
    admin_id, admin_password = backend.synapse.register("admin", admin=True)
    admin = backend.synapse.login(admin_id, admin_password)

    def strict_limit() -> None:
        httpx.post(
            f"{backend.url}/_synapse/admin/v1/users/{backend.last['user']}/override_ratelimit",
            json={"messages_per_second": 1, "burst_count": 1},
            headers={"Authorization": f"Bearer {admin}"},
        ).raise_for_status()

    async def main() -> Any:
        async with httpx.AsyncClient(timeout=20) as client:
            conn = Connection(
                account=account, client=client, credentials=credentials, media_root=REPO / "posts"
            )
            plugin = registry.get("matrix")
            first = await plugin.stage(item("matrix", a_text()), conn)
            second = await plugin.stage(item("matrix", a_text()), conn)
            strict_limit()
            await asyncio.sleep(1.2)  # the room's own creation events spent the first token
            await plugin.publish(first, conn)
            with pytest.raises(RateLimited) as info:
                await plugin.publish(second, conn)
            assert 0 < info.value.retry_after <= 5
            return await send_staged(plugin, second, conn, attempts=5)

    result = asyncio.run(main())
    assert result.outcome == "sent" and result.attempts >= 2
    assert len([p for p in backend.landed() if p["text"]]) == 2


def test_rate_limit_on_real_pds(request: pytest.FixtureRequest) -> None:
    """The PDS's own 429, from a second PDS started with its rate limits on (the suite's runs
    without them, as dev-env starts it). createSession allows 30 logins per 5 minutes per
    account (and IP): stormer logs in once per account and keeps the session, but the
    account's other logins (another machine, a script) may have used the budget up. Then
    stormer's login is a RateLimited with the PDS's own Retry-After (minutes: beyond
    sending.MAX_WAIT, the caller's to schedule); trying again early is refused again, with
    the same reset; nothing is posted; and the account's limit is not the server's."""
    pds = request.getfixturevalue("bluesky_pds_rate_limited")
    handle, password, did = pds.create_account("limited")
    login_url = f"{pds.url}/xrpc/com.atproto.server.createSession"

    async def spend_the_budget() -> tuple[int, int]:
        """One login reads the budget from the PDS's headers, the rest go at once (each
        takes >= 350 ms on the PDS, its guard against timing attacks)."""
        body = {"identifier": handle, "password": password}
        async with httpx.AsyncClient(timeout=30) as client:
            first = await client.post(login_url, json=body)
            first.raise_for_status()
            policy = re.fullmatch(r"(\d+);w=(\d+)", first.headers["ratelimit-policy"])
            assert policy, first.headers
            left = int(first.headers["ratelimit-remaining"])
            rest = await asyncio.gather(*(client.post(login_url, json=body) for _ in range(left)))
        assert [r.status_code for r in rest] == [200] * left
        assert sorted(int(r.headers["ratelimit-remaining"]) for r in rest) == list(range(left))
        limit, window = map(int, policy.groups())
        assert left == limit - 1
        return limit, window

    spent_at = time.time()
    limit, window = asyncio.run(spend_the_budget())
    assert (limit, window) == (30, 300)  # what stormer/platforms/bluesky.py is built around

    account, credentials = _account(
        "bluesky",
        {"base_url": pds.url, "target": None, "handle": handle},
        {"app_password": password},
    )
    seen: list[tuple[float, httpx.Response]] = []

    async def record(response: httpx.Response) -> None:
        seen.append((time.time(), response))

    async def main() -> tuple[RateLimited, RateLimited, dict[str, Any]]:
        async with httpx.AsyncClient(timeout=20, event_hooks={"response": [record]}) as client:
            conn = Connection(
                account=account, client=client, credentials=credentials, media_root=REPO / "posts"
            )
            plugin = registry.get("bluesky")
            with pytest.raises(RateLimited) as first:
                await plugin.stage(item("bluesky", a_text()), conn)
            with pytest.raises(RateLimited) as again:
                await plugin.verify(conn)
            return first.value, again.value, conn.state

    first, again, state = asyncio.run(main())
    logins = [(at, r) for at, r in seen if r.url.path.endswith(".createSession")]
    assert [r.status_code for _, r in logins] == [429, 429], "one login per call, no more"
    assert [r.json()["error"] for _, r in logins] == ["RateLimitExceeded"] * 2
    for (at, response), error in zip(logins, (first, again), strict=True):
        headers = response.headers
        assert headers["ratelimit-remaining"] == "0"
        # The wait is the PDS's Retry-After, and it ends at the PDS's RateLimit-Reset...
        assert error.retry_after == float(headers["retry-after"])
        assert abs(at + error.retry_after - int(headers["ratelimit-reset"])) <= 2
        # ...the end of the window that the spent logins opened.
        assert window - (at - spent_at) - 2 <= error.retry_after <= window
        assert error.platform == "bluesky" and password not in str(error)
    assert logins[0][1].headers["ratelimit-reset"] == logins[1][1].headers["ratelimit-reset"]
    assert again.retry_after <= first.retry_after
    assert "accessJwt" not in state  # no session, nothing half-stored

    limited = RealPds(pds)
    limited.last = {"did": did}
    assert limited.landed() == []
    # The limit is the account's: another account on the same PDS logs in and posts.
    other = RealPds(pds)
    text = a_text()

    async def post(plugin: Platform, conn: Connection) -> Published:
        return await plugin.publish(await plugin.stage(item("bluesky", text), conn), conn)

    assert run(other, post).remote_id.startswith(f"at://{other.last['did']}/")
    assert [p["text"] for p in other.landed()] == [text]
