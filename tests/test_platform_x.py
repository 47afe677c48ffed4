"""The X client against a fake X API v2 on httpx.MockTransport.

The fake does what makes X hard: no idempotency, a 403 for duplicate text, links rewritten
to t.co (and one appended for attached media) and & < > escaped in the text it returns,
rate limits signalled only by x-rate-limit-* headers.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from example import REPO
from platform_fakes import assert_nowhere, form, post_item, run_against

from stormer.channels.base import NOT_POSTED
from stormer.channels.x import X
from stormer.errors import AuthError, OutcomeUnknown, RateLimited, Rejected
from stormer.queue import MediaRef, QueueItem
from stormer.storm import Account

API = "https://api.x.example"
TOKEN = "tok-SECRET-123"
USER = {"id": "2244994945", "username": "fps_campaign", "name": "FPS campaign"}
FIRE_AT = datetime(2031, 3, 13, 18, tzinfo=UTC)
TEXT = "Education is a right & not a privilege: https://example.org/a #FreePalestinianStudents"
IMAGES = (
    MediaRef("images/flag-book.png", "A flag over an open book", 800, 418),
    MediaRef("images/globe-ring.png", "A ring of hands around a globe", 800, 418),
)


class FakeX:
    """Just enough of X API v2 for one user: media, posts, the user's timeline."""

    def __init__(self) -> None:
        self.now = FIRE_AT  # the server's clock, for created_at
        self.media: dict[str, dict[str, Any]] = {}
        self.posts: list[dict[str, Any]] = []  # newest first, as X lists them
        self.bodies: list[dict[str, Any]] = []  # every POST /2/tweets body received
        self.timeline_queries: list[dict[str, str]] = []
        self.page_size = 100
        self.rate_limit_headers: dict[str, str] | None = None
        self.drop_answer_once = False  # create the post, then lose the answer
        self.drop_request_once = False  # lose the request before it arrives

    def add_post(self, text: str, at: datetime) -> dict[str, Any]:
        post = {
            "id": str(1900000000000000000 + len(self.posts)),
            "text": _as_x_shows(text),
            "created_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "edit_history_tweet_ids": [],
        }
        self.posts.insert(0, post)
        return post

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(
                401,
                json={
                    "title": "Unauthorized",
                    "type": "about:blank",
                    "status": 401,
                    "detail": "Unauthorized",
                },
            )
        path = request.url.path
        if path == "/2/users/me":
            return httpx.Response(200, json={"data": USER})
        if path == "/2/media/upload":
            fields = form(request)
            media_id = str(1880000000000000000 + len(self.media))
            _, data, mime = fields["media"]
            self.media[media_id] = {
                "category": fields["media_category"],
                "bytes": data,
                "type": mime,
                "alt": None,
            }
            return httpx.Response(
                200,
                json={
                    "data": {
                        "id": media_id,
                        "media_key": f"3_{media_id}",
                        "size": len(data),
                        "expires_after_secs": 86400,
                        "image": {"image_type": "image/png"},
                    }
                },
            )
        if path == "/2/media/metadata":
            body = json.loads(request.content)
            self.media[body["id"]]["alt"] = body["metadata"]["alt_text"]["text"]
            return httpx.Response(
                200, json={"data": {"id": body["id"], "associated_metadata": True}}
            )
        if path == "/2/tweets" and request.method == "POST":
            return self._post(request)
        if path == f"/2/users/{USER['id']}/tweets":
            return self._timeline(request)
        return httpx.Response(404, json={"title": "Not Found Error", "detail": path})

    def _post(self, request: httpx.Request) -> httpx.Response:
        if self.drop_request_once:
            self.drop_request_once = False
            raise httpx.ReadTimeout("lost on the way", request=request)
        if self.rate_limit_headers is not None:
            headers, self.rate_limit_headers = self.rate_limit_headers, None
            return httpx.Response(
                429,
                headers=headers,
                json={"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
            )
        body = json.loads(request.content)
        self.bodies.append(body)
        if len(body["text"]) > 280:
            return httpx.Response(
                400,
                json={
                    "errors": [{"message": "Your Tweet text is too long."}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                },
            )
        shown = _as_x_shows(body["text"])
        if any(p["text"] == shown for p in self.posts):
            return httpx.Response(
                403,
                json={
                    "detail": "You are not allowed to create a Tweet with duplicate content.",
                    "type": "about:blank",
                    "title": "Forbidden",
                    "status": 403,
                },
            )
        media_ids = body.get("media", {}).get("media_ids", [])
        if any(m not in self.media for m in media_ids):
            return httpx.Response(400, json={"detail": "Your media IDs are invalid."})
        text = body["text"] + (" https://t.co/m3dia" if media_ids else "")
        post = self.add_post(text, self.now)
        if self.drop_answer_once:
            self.drop_answer_once = False
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(
            201,
            json={
                "data": {
                    "id": post["id"],
                    "text": post["text"],
                    "edit_history_tweet_ids": [post["id"]],
                }
            },
        )

    def _timeline(self, request: httpx.Request) -> httpx.Response:
        q = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        self.timeline_queries.append(q)
        since = datetime.fromisoformat(q["start_time"])
        posts = [p for p in self.posts if datetime.fromisoformat(p["created_at"]) >= since]
        start = int(q.get("pagination_token", "0"))
        size = min(int(q["max_results"]), self.page_size)
        page = posts[start : start + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if start + size < len(posts):
            meta["next_token"] = str(start + size)
        return httpx.Response(200, json={"data": page, "meta": meta} if page else {"meta": meta})


def _as_x_shows(text: str) -> str:
    """X's `text`: links replaced by t.co links, & < > escaped."""
    return html.escape(re.sub(r"https://(?!t\.co)\S+", "https://t.co/abc123", text), quote=False)


ACCOUNT = Account(
    name="campaign-x",
    platform="x",
    langs=("en",),
    base_url=API,
    target=None,
    handle=None,
    credentials=(("access_token", "FPS_X_TOKEN"),),
    line=None,
)


def item(text: str = TEXT, media: tuple[MediaRef, ...] = ()) -> QueueItem:
    return post_item("x", text, media, account=ACCOUNT.name, fire_at=FIRE_AT)


def run(server: FakeX, flow, token: str = TOKEN):  # type: ignore[no-untyped-def]
    return run_against(
        server,
        lambda conn: flow(X(), conn),
        ACCOUNT,
        {"access_token": token},
        media_root=REPO / "posts",
    )


def test_publish_with_images_and_alt_text() -> None:
    server = FakeX()
    saved: list[dict[str, Any]] = []

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        conn.on_state_change = lambda state: saved.append(dict(state))
        assert await plugin.verify(conn) == "@fps_campaign"
        staged = await plugin.stage(item(media=IMAGES), conn)
        return staged, await plugin.publish(staged, conn)

    staged, published = run(server, flow)
    assert saved == [{"user_id": USER["id"], "username": "fps_campaign"}]
    media_ids = list(server.media)
    assert len(media_ids) == 2 and staged.data["media_ids"] == media_ids
    for media_id, ref in zip(media_ids, IMAGES, strict=True):
        assert server.media[media_id] == {
            "category": "tweet_image",
            "bytes": (REPO / "posts" / ref.path).read_bytes(),
            "type": "image/png",
            "alt": ref.alt,
        }
    assert server.bodies == [{"text": TEXT, "media": {"media_ids": media_ids}}]
    (post,) = server.posts
    assert published.remote_id == post["id"]
    assert published.permalink == f"https://x.com/fps_campaign/status/{post['id']}"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0"}, 600),
        # The 15-minute window has room; the 24-hour cap is spent: its reset is what counts.
        (
            {
                "x-rate-limit-remaining": "40",
                "x-user-limit-24hour-remaining": "0",
                "x-user-limit-24hour-reset": "+3600",
            },
            3600,
        ),
    ],
)
def test_rate_limit_waits_for_the_reset_x_announces(headers: dict[str, str], expected: int) -> None:
    server = FakeX()
    now = int(time.time())
    server.rate_limit_headers = {
        "x-rate-limit-reset": str(now + 600),
        **{k: str(now + int(v[1:])) if v.startswith("+") else v for k, v in headers.items()},
    }

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(), conn)
        with pytest.raises(RateLimited) as info:
            await plugin.publish(staged, conn)
        return info.value

    error = run(server, flow)
    assert expected - 2 <= error.retry_after <= expected + 1  # whole-second reset: +1 s
    assert server.posts == []


def test_bad_token_is_an_auth_error() -> None:
    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        with pytest.raises(AuthError) as info:
            await plugin.stage(item(media=IMAGES), conn)
        return str(info.value)

    server = FakeX()
    message = run(server, flow, token="bad-SECRET-token")
    assert message == "x: Unauthorized — check this account's credentials"
    assert server.media == {}  # checked before uploading anything


def test_too_long_is_rejected() -> None:
    server = FakeX()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item("x" * 281), conn)
        with pytest.raises(Rejected, match="too long"):
            await plugin.publish(staged, conn)

    run(server, flow)
    assert server.posts == []


def test_duplicate_text_is_rejected_for_good() -> None:
    server = FakeX()
    server.add_post(TEXT, FIRE_AT - timedelta(days=2))  # the same text, posted days ago

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(), conn)
        with pytest.raises(Rejected) as info:
            await plugin.publish(staged, conn)
        return str(info.value)

    assert "X refuses duplicate text" in run(server, flow)
    assert len(server.posts) == 1
    (query,) = server.timeline_queries  # it looked for its own post first: not there
    assert query["start_time"] == "2031-03-13T17:45:00Z"


def test_a_lost_answer_is_found_by_reading_back_and_not_posted_again() -> None:
    server = FakeX()
    server.add_post("an older post", FIRE_AT - timedelta(hours=1))
    server.drop_answer_once = True

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(media=IMAGES[:1]), conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)  # posted; the answer was lost
        return await plugin.reconcile(staged, conn)

    found = run(server, flow)
    assert len(server.bodies) == 1 and len(server.posts) == 2
    # X shows "&amp;" and t.co links (one more for the image): still recognised.
    assert server.posts[0]["text"].endswith(
        "https://t.co/abc123 #FreePalestinianStudents https://t.co/m3dia"
    )
    assert "&amp;" in server.posts[0]["text"]
    assert found is not None and found.remote_id == server.posts[0]["id"]
    assert found.permalink == f"https://x.com/fps_campaign/status/{found.remote_id}"


def test_a_lost_request_reads_back_none_and_may_be_sent_again() -> None:
    server = FakeX()
    server.drop_request_once = True

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(), conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)  # never arrived
        assert await plugin.reconcile(staged, conn) is NOT_POSTED  # safe to send again
        return await plugin.publish(staged, conn)

    published = run(server, flow)
    (post,) = server.posts
    assert published.remote_id == post["id"]


def test_a_resend_refused_as_duplicate_returns_the_earlier_post() -> None:
    server = FakeX()
    server.drop_answer_once = True

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(), conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)
        return await plugin.publish(staged, conn)  # X: duplicate → it is our own post

    published = run(server, flow)
    (post,) = server.posts
    assert published.remote_id == post["id"] and len(server.bodies) == 2


def test_read_back_follows_pages() -> None:
    server = FakeX()
    server.page_size = 2
    server.drop_answer_once = True

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(), conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)
        for n in range(4):  # posted by hand after it, listed first
            server.add_post(f"later post {n}", FIRE_AT + timedelta(minutes=n + 1))
        return await plugin.reconcile(staged, conn)

    found = run(server, flow)
    assert found is not None and found.remote_id == server.posts[-1]["id"]
    assert [q.get("pagination_token") for q in server.timeline_queries] == [None, "2", "4"]


def test_no_token_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakeX()
    seen: list[str] = []

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(media=IMAGES[:1]), conn)
        server.rate_limit_headers = {"x-rate-limit-reset": str(int(time.time()) + 60)}
        for _ in range(2):
            server.drop_answer_once = True
            try:
                await plugin.publish(staged, conn)
            except (RateLimited, OutcomeUnknown) as e:
                seen.append(f"{e} {e!r}")
        found = await plugin.reconcile(staged, conn)
        seen.extend([repr(staged), repr(found), repr(conn.credentials)])

    run(server, flow)
    with pytest.raises(AuthError) as info:
        run(FakeX(), lambda plugin, conn: plugin.verify(conn), token="bad-SECRET-token")
    seen.append(f"{info.value} {info.value!r}")
    seen.extend(r.getMessage() for r in caplog.records)
    assert len(seen) > 6 and any("/2/tweets" in line for line in seen)
    assert_nowhere(["SECRET"], seen, caplog)


def test_a_send_lost_before_reaching_x_is_sent_again_once() -> None:
    """OutcomeUnknown, then the read-back finds nothing: the item is sent again — and only
    once — instead of being left unconfirmed."""
    from stormer.dispatch.sending import send_staged

    calls = {"tweets": 0}

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/2/users/me":
            return httpx.Response(200, json={"data": {"id": "7", "username": "fps"}})
        if request.url.path == "/2/users/7/tweets":
            return httpx.Response(200, json={"meta": {"result_count": 0}})
        if request.url.path == "/2/tweets":
            calls["tweets"] += 1
            if calls["tweets"] == 1:  # lost on the way: never reached X
                raise httpx.ReadTimeout("no answer", request=request)
            return httpx.Response(201, json={"data": {"id": "99", "text": "t"}})
        return httpx.Response(404)

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        return await send_staged(plugin, await plugin.stage(item(), conn), conn)

    result = run(server, flow)  # type: ignore[arg-type]
    assert result.outcome == "sent" and result.published.remote_id == "99"
    assert calls["tweets"] == 2


def test_read_back_that_reaches_its_page_bound_cannot_say() -> None:
    """More posts since T than the bound lets it read: unconfirmed (None), not NOT_POSTED —
    reading on could spend the Project's monthly Post cap."""
    server = FakeX()
    server.page_size = 1
    for n in range(X.read_back_pages + 1):
        server.add_post(f"someone else's post {n}", FIRE_AT + timedelta(minutes=n))

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        return await plugin.reconcile(await plugin.stage(item(), conn), conn)

    assert run(server, flow) is None
    assert len(server.timeline_queries) == X.read_back_pages


def test_read_backs_per_account_are_bounded() -> None:
    server = FakeX()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(), conn)
        return [await plugin.reconcile(staged, conn) for _ in range(X.read_backs_per_account + 2)]

    answers = run(server, flow)
    assert answers == [NOT_POSTED] * X.read_backs_per_account + [None, None]
    assert len(server.timeline_queries) == X.read_backs_per_account
    assert server.posts == []  # reconciling never posts
