"""The Mastodon client against a fake server on httpx.MockTransport."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from example import REPO
from platform_fakes import form, run_against

from stormer.channels.mastodon import Mastodon
from stormer.dispatch.sending import send_staged
from stormer.errors import AuthError, OutcomeUnknown, RateLimited, Rejected
from stormer.queue import MediaRef, QueueItem
from stormer.secrets import Secret
from stormer.storm import Account

TOKEN = "tok-SECRET-mastodon-123"
BASE = "https://social.example.org"


class FakeMastodon:
    """Just enough of Mastodon: media that needs processing, statuses with Idempotency-Key."""

    def __init__(self) -> None:
        self.statuses: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.polls = 0
        self.rate_limit_once = False
        self.drop_response_once = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "The access token is invalid"})
        path = request.url.path
        if path == "/api/v1/accounts/verify_credentials":
            return httpx.Response(200, json={"id": "1", "acct": "campaign"})
        if path == "/api/v2/media":
            media_id = str(len(self.media) + 100)
            body = request.content
            self.media[media_id] = {
                "id": media_id,
                "ready": False,
                "description": form(request)["description"],
                "size": len(body),
            }
            return httpx.Response(202, json={"id": media_id, "url": None})
        if path.startswith("/api/v1/media/"):
            self.polls += 1
            media = self.media[path.rsplit("/", 1)[-1]]
            if self.polls < 2:
                return httpx.Response(206, json={"id": media["id"], "url": None})
            media["ready"] = True
            return httpx.Response(200, json={"id": media["id"], "url": f"{BASE}/m.png"})
        if path == "/api/v1/statuses":
            if self.rate_limit_once:
                self.rate_limit_once = False
                return httpx.Response(
                    429, headers={"Retry-After": "2"}, json={"error": "Too many requests"}
                )
            key = request.headers["Idempotency-Key"]
            body = json.loads(request.content)
            if len(body["status"]) > 500:
                return httpx.Response(
                    422, json={"error": "Validation failed: Text character limit of 500 exceeded"}
                )
            if any(not self.media[m]["ready"] for m in body.get("media_ids", [])):
                return httpx.Response(422, json={"error": "media not processed"})
            if key not in self.by_key:
                status_id = str(len(self.statuses) + 1)
                self.statuses[status_id] = body
                self.by_key[key] = status_id
            status_id = self.by_key[key]
            if self.drop_response_once:
                self.drop_response_once = False
                raise httpx.ReadTimeout("the answer was lost", request=request)
            return httpx.Response(
                200, json={"id": status_id, "url": f"{BASE}/@campaign/{status_id}"}
            )
        if path.startswith("/api/v1/statuses/"):
            status_id = path.rsplit("/", 1)[-1]
            return httpx.Response(
                200, json={"id": status_id, "url": f"{BASE}/@campaign/{status_id}"}
            )
        return httpx.Response(404, json={"error": "Record not found"})


ACCOUNT = Account(
    name="campaign-mastodon",
    platform="mastodon",
    langs=("en",),
    base_url=BASE,
    target=None,
    handle=None,
    credentials=(("access_token", "FPS_MASTODON_TOKEN"),),
    line=None,
)


def item(text: str = "Free them all #FreePalestinianStudents", media: bool = True) -> QueueItem:
    refs = (
        (MediaRef("images/flag-book.png", "A flag over an open book", 800, 418),) if media else ()
    )
    return QueueItem(
        id="0123456789abcdef",
        kind="post",
        fire_at=datetime(2031, 3, 13, 18, tzinfo=UTC),
        platform="mastodon",
        account=ACCOUNT.name,
        lang="en",
        text=text,
        media=refs,
    )


def run(server: FakeMastodon, coro_factory, token: str = TOKEN):  # type: ignore[no-untyped-def]
    return run_against(
        server,
        lambda conn: coro_factory(Mastodon(), conn),
        ACCOUNT,
        {"access_token": token},
        media_root=REPO / "posts",
    )


def test_publish_with_image_alt_text_and_idempotency_key() -> None:
    server = FakeMastodon()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        assert await plugin.verify(conn) == "@campaign"
        staged = await plugin.stage(item(), conn)
        return await plugin.publish(staged, conn)

    published = run(server, flow)
    assert published.remote_id == "1" and published.permalink == f"{BASE}/@campaign/1"
    assert server.polls == 2  # waited for processing (206, then 200)
    (media,) = server.media.values()
    assert media["description"] == "A flag over an open book"
    assert media["size"] > (REPO / "posts/images/flag-book.png").stat().st_size
    assert server.statuses["1"] == {
        "status": "Free them all #FreePalestinianStudents",
        "visibility": "public",
        "language": "en",
        "media_ids": ["100"],
    }
    assert server.by_key == {"stormer-0123456789abcdef": "1"}


def test_a_lost_answer_is_reconciled_without_a_second_post() -> None:
    server = FakeMastodon()
    server.drop_response_once = True

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(media=False), conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)  # the status was created, the answer lost
        server.drop_response_once = True
        return await send_staged(plugin, staged, conn)  # lost again, then reconciled

    result = run(server, flow)
    assert result.outcome == "sent" and result.published.remote_id == "1"
    assert len(server.statuses) == 1


def test_rate_limit_is_honoured() -> None:
    server = FakeMastodon()
    server.rate_limit_once = True
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(media=False), conn)
        with pytest.raises(RateLimited) as info:
            await plugin.publish(staged, conn)
        assert info.value.retry_after == 2.0
        server.rate_limit_once = True
        return await send_staged(plugin, staged, conn, sleep=fake_sleep)

    result = run(server, flow)
    assert result.outcome == "sent" and result.attempts == 2 and waits == [2.0]
    assert len(server.statuses) == 1


def test_bad_token_and_too_long(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakeMastodon()

    async def bad(plugin, conn):  # type: ignore[no-untyped-def]
        with pytest.raises(AuthError) as info:
            await plugin.verify(conn)
        return str(info.value)

    message = run(server, bad, token="invalid-SECRET-token-999")
    assert "access token is invalid" in message and "SECRET" not in message

    async def long(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item("x" * 501, media=False), conn)
        with pytest.raises(Rejected) as info:
            await plugin.publish(staged, conn)
        return str(info.value), repr(staged), repr(conn.credentials)

    message, staged_repr, creds = run(server, long)
    assert "character limit" in message
    assert TOKEN not in creds and TOKEN not in staged_repr
    assert all(
        TOKEN not in r.getMessage() and "SECRET" not in r.getMessage() for r in caplog.records
    )
    assert any("api/v1/statuses" in r.getMessage() for r in caplog.records)  # httpx did log


def test_secret_never_prints() -> None:
    s = Secret("tok-very-secret")
    assert "very-secret" not in f"{s} {s!r} {[s]} { ({'a': s}) }"
    assert s.reveal() == "tok-very-secret"


def test_credentials_from_environment_or_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from stormer.secrets import resolve

    monkeypatch.setenv("FPS_MASTODON_TOKEN", "tok-from-env")
    assert resolve(ACCOUNT, ("access_token",))["access_token"].reveal() == "tok-from-env"
    monkeypatch.delenv("FPS_MASTODON_TOKEN")
    with pytest.raises(AuthError, match="FPS_MASTODON_TOKEN"):
        resolve(ACCOUNT, ("access_token",))


# --- the instance's own limits ---------------------------------------------------------------


def _limits(answers: dict[str, httpx.Response]):  # type: ignore[no-untyped-def]
    import asyncio

    from stormer.channels.base import Connection

    asked: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        assert "Authorization" not in request.headers  # public: no token goes out
        return answers.get(request.url.path, httpx.Response(404, text="<html>Not Found</html>"))

    async def main():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
            conn = Connection(account=ACCOUNT, client=client, credentials={})
            return await Mastodon().read_limits(conn)

    return asyncio.run(main()), asked


def test_read_limits_from_the_v2_instance_then_v1_then_none() -> None:
    config = {
        "statuses": {"max_characters": 1000, "characters_reserved_per_url": 30},
        "media_attachments": {"image_size_limit": 8_000_000, "description_limit": 2000},
    }
    limits, asked = _limits(
        {"/api/v2/instance": httpx.Response(200, json={"configuration": config})}
    )
    assert asked == ["/api/v2/instance"]
    assert (limits.text_limit, limits.url_length) == (1000, 30)
    assert (limits.image_bytes, limits.alt_text_limit) == (8_000_000, 2000)
    assert limits.source == f"{BASE}/api/v2/instance"

    old = {"statuses": {"max_characters": 700}}  # a 3.5 server: no v2, no description_limit
    limits, asked = _limits({"/api/v1/instance": httpx.Response(200, json={"configuration": old})})
    assert asked == ["/api/v2/instance", "/api/v1/instance"]
    assert limits.text_limit == 700 and limits.url_length is None and limits.alt_text_limit is None
    assert limits.source == f"{BASE}/api/v1/instance"

    assert _limits({})[0] is None  # older still: the class data stand
