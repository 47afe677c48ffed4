"""Telegram Bot API sending, against a fake Bot API behind httpx.MockTransport.

The fake answers like api.telegram.org: `{ok, result}` or `{ok: false, error_code,
description, parameters}`, with the bot token in the URL path."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from platform_fakes import (
    JPEG,
    PNG,
    account_for,
    assert_nowhere,
    form,
    lost_then_reconciled,
    post_item,
    publish,
    run_against,
    shown,
    what_sending_shows,
)

from stormer.channels.base import Connection
from stormer.channels.telegram import Telegram
from stormer.errors import AuthError, OutcomeUnknown, RateLimited, Rejected
from stormer.queue import MediaRef, QueueItem
from stormer.secrets import Secret
from stormer.storm import Account

TOKEN = "123456:SECRET-token-abc"
WRONG_TOKEN = "654321:WRONG-token-xyz"
CHANNEL = "@storm_channel"
TEXT = "Education is a right, not a privilege. #FreePalestinianStudents"
T = TypeVar("T")


def failure(code: int, description: str, **parameters: Any) -> httpx.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return httpx.Response(code, json=body)


class FakeBotApi:
    """Enough of the Bot API to post: records every send it accepts.

    `answer` replaces the reply to sends; `timeout_after_send` records the send and then
    loses the answer (the client sees a read timeout)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.answer: httpx.Response | None = None
        self.timeout_after_send = False
        self.chat_username: str | None = "storm_channel"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        owner, _, method = request.url.path.removeprefix("/bot").partition("/")
        if owner != TOKEN:  # Telegram answers a malformed token 404, a revoked one 401
            return failure(401, "Unauthorized") if ":" in owner else failure(404, "Not Found")
        if method == "getMe":
            return httpx.Response(
                200,
                json={
                    "ok": True,
                    "result": {
                        "id": 123456,
                        "is_bot": True,
                        "first_name": "Storm",
                        "username": "storm_bot",
                    },
                },
            )
        if self.answer is not None:
            return self.answer
        fields = form(request)
        self.sent.append((method, fields))
        if self.timeout_after_send:
            raise httpx.ReadTimeout("timed out", request=request)
        chat = {"id": -1001234567890, "type": "channel", "title": "Storm"}
        if self.chat_username:
            chat["username"] = self.chat_username
        first = 100 + 10 * (len(self.sent) - 1)
        if method == "sendMediaGroup":
            media = json.loads(fields["media"])
            return httpx.Response(
                200,
                json={
                    "ok": True,
                    "result": [
                        {
                            "message_id": first + i,
                            "chat": chat,
                            "date": 1615485600,
                            "media_group_id": "1",
                            "photo": [],
                        }
                        for i in range(len(media))
                    ],
                },
            )
        return httpx.Response(
            200,
            json={"ok": True, "result": {"message_id": first, "chat": chat, "date": 1615485600}},
        )


def account(target: str = CHANNEL) -> Account:
    return account_for("telegram", ("bot_token", "FPS_TELEGRAM_BOT_TOKEN"), target=target)


def item(*media: MediaRef) -> QueueItem:
    return post_item("telegram", TEXT, media)


def run(
    server: FakeBotApi,
    scenario: Callable[[Connection], Awaitable[T]],
    *,
    token: str = TOKEN,
    target: str = CHANNEL,
    media_root: Path | None = None,
) -> T:
    return run_against(
        server, scenario, account(target), {"bot_token": token}, media_root=media_root
    )


async def stage_and_publish(conn: Connection, queued: QueueItem | None = None) -> Any:
    return await publish(Telegram(), queued or item(), conn)


def test_verify_names_the_bot() -> None:
    assert run(FakeBotApi(), Telegram().verify) == "@storm_bot"


def test_text_post_is_send_message_with_a_channel_permalink() -> None:
    server = FakeBotApi()
    published = run(server, stage_and_publish)
    assert server.sent == [("sendMessage", {"chat_id": CHANNEL, "text": TEXT})]
    assert published.remote_id == "100"
    assert published.permalink == "https://t.me/storm_channel/100"


def test_one_image_is_a_multipart_send_photo_with_the_caption(
    images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    server = FakeBotApi()
    run(server, lambda conn: stage_and_publish(conn, item(images[0])), media_root=tmp_path)
    assert server.sent == [
        (
            "sendPhoto",
            {"chat_id": CHANNEL, "caption": TEXT, "photo": ("banner.png", PNG, "image/png")},
        )
    ]


def test_album_attaches_each_file_and_captions_the_first_photo(
    images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    server = FakeBotApi()
    published = run(
        server, lambda conn: stage_and_publish(conn, item(*images)), media_root=tmp_path
    )
    [(method, fields)] = server.sent
    assert method == "sendMediaGroup"
    assert set(fields) == {"chat_id", "media", "file0", "file1"}
    assert fields["chat_id"] == CHANNEL
    assert json.loads(fields["media"]) == [
        {"type": "photo", "media": "attach://file0", "caption": TEXT},
        {"type": "photo", "media": "attach://file1"},
    ]
    assert fields["file0"] == ("banner.png", PNG, "image/png")
    assert fields["file1"] == ("photo.jpg", JPEG, "image/jpeg")
    assert published.remote_id == "100"  # the album's first message
    assert published.permalink == "https://t.me/storm_channel/100"
    assert [m["message_id"] for m in published.raw["messages"]] == [100, 101]


def test_a_private_chat_has_no_permalink() -> None:
    server = FakeBotApi()
    server.chat_username = None
    published = run(server, stage_and_publish, target="-1001234567890")
    assert server.sent[0][1]["chat_id"] == "-1001234567890"
    assert published.remote_id == "100" and published.permalink is None


def test_flood_control_waits_telegrams_retry_after() -> None:
    server = FakeBotApi()
    server.answer = failure(429, "Too Many Requests: retry after 17", retry_after=17)
    with pytest.raises(RateLimited) as caught:
        run(server, stage_and_publish)
    assert caught.value.retry_after == 17.0


@pytest.mark.parametrize("token", [WRONG_TOKEN, "not-a-token"])
def test_a_rejected_bot_token_is_an_auth_error(token: str) -> None:
    server = FakeBotApi()
    with pytest.raises(AuthError, match="bot token rejected") as caught:
        run(server, stage_and_publish, token=token)
    assert caught.value.status == (401 if ":" in token else 404)
    assert token not in str(caught.value)
    assert server.sent == []


def test_a_bot_that_may_not_post_is_an_auth_error() -> None:
    server = FakeBotApi()
    server.answer = failure(403, "Forbidden: bot is not a member of the channel chat")
    with pytest.raises(AuthError, match="not a member of the channel"):
        run(server, stage_and_publish)


@pytest.mark.parametrize(
    "description",
    [
        "Bad Request: message is too long",
        "Bad Request: caption is too long",
        "Bad Request: chat not found",
    ],
)
def test_a_refused_post_is_rejected_with_telegrams_reason(description: str) -> None:
    server = FakeBotApi()
    server.answer = failure(400, description)
    with pytest.raises(Rejected) as caught:
        run(server, stage_and_publish)
    assert description in str(caught.value)
    assert not caught.value.retryable


def test_a_server_error_after_sending_is_an_unknown_outcome() -> None:
    server = FakeBotApi()
    server.answer = failure(502, "Bad Gateway")
    with pytest.raises(OutcomeUnknown):
        run(server, stage_and_publish)


def test_a_timeout_after_sending_is_unknown_and_never_resent() -> None:
    server = FakeBotApi()
    server.timeout_after_send = True

    # Telegram cannot tell: the organizer decides.
    assert run(server, lost_then_reconciled(Telegram(), item())) is None
    assert len(server.sent) == 1  # the post landed once; reconcile sent nothing


def test_the_bot_token_appears_in_no_error_repr_or_log(
    caplog: pytest.LogCaptureFixture, images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakeBotApi()
    error = failure(500, "Internal Server Error")
    scenario = what_sending_shows(Telegram(), item(*images), server, server_error=error)
    texts = run(server, scenario, media_root=tmp_path)
    with pytest.raises(AuthError) as rejected:
        run(FakeBotApi(), stage_and_publish, token=WRONG_TOKEN)
    texts.extend(shown(rejected.value))

    logged = [r.getMessage() for r in caplog.records]
    assert any("HTTP Request: POST" in m and "<redacted>" in m for m in logged), logged
    assert "Request(POST https://api.telegram.org/bot<redacted>/sendMediaGroup)" in texts[1]
    assert_nowhere(["SECRET-token", "WRONG-token"], texts, caplog)


def test_staging_asks_telegram_whether_the_token_still_works() -> None:
    """Bot tokens do not expire, but @BotFather can revoke one between login and T: staging
    calls getMe, so a revoked token fails minutes before T, with nothing sent."""
    asked: list[str] = []
    server = FakeBotApi()

    def counting(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path.rsplit("/", 1)[-1])
        return server(request)

    async def scenario(conn: Connection) -> None:
        await Telegram().stage(item(), conn)
        conn.credentials["bot_token"] = Secret(WRONG_TOKEN)  # revoked: a new one was issued
        with pytest.raises(AuthError, match="bot token rejected"):
            await Telegram().stage(item(), conn)

    run(counting, scenario)
    assert asked == ["getMe", "getMe"] and server.sent == []


def test_against_the_simulator_a_token_revoked_after_login_fails_at_staging(
    simulator: str,
) -> None:
    token = "4242:SECRET-revoked-later"

    async def main() -> None:
        async with httpx.AsyncClient() as client:
            conn = Connection(
                account_for("telegram", ("bot_token", "X"), base_url=simulator, target=CHANNEL),
                client,
                {"bot_token": Secret(token)},
            )
            assert await Telegram().verify(conn) == "@sim4242_bot"  # `stormer login`
            revoked = await client.post(f"{simulator}/_sim/telegram/revoke", json={"token": token})
            revoked.raise_for_status()
            with pytest.raises(AuthError, match="bot token rejected") as caught:
                await Telegram().stage(item(), conn)
            assert caught.value.status == 401

    asyncio.run(main())
    assert httpx.get(f"{simulator}/_sim/posts").json() == []
