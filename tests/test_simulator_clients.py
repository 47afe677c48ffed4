"""Real client libraries against the simulator, unchanged: what they post must show up in
`/_sim/posts`. If one of these needs a special case, the simulator is not faithful enough."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fixtures_sim import png_bytes
from timing import wait_until


def posts(simulator: str) -> list[dict]:
    return httpx.get(f"{simulator}/_sim/posts", timeout=10).json()


# --- Mastodon.py (synchronous, requests) ---------------------------------------------------------


@pytest.fixture
def mastodon_client(simulator: str) -> Iterator[object]:
    from mastodon import Mastodon

    client = Mastodon(access_token="tok", api_base_url=simulator, request_timeout=10)
    try:
        yield client
    finally:
        client.session.close()


def test_mastodon_py_posts_with_media_and_alt_text(mastodon_client, simulator: str) -> None:
    media = mastodon_client.media_post(
        png_bytes(), mime_type="image/png", description="a red square"
    )
    assert media["url"] is None  # still processing: the v2 upload answered 202
    wait_until("the media to be processed", lambda: mastodon_client.media(media)["url"] is not None)
    status = mastodon_client.status_post(
        "Hello #storm", media_ids=[media], idempotency_key="post-1"
    )
    retried = mastodon_client.status_post(
        "Hello #storm", media_ids=[media], idempotency_key="post-1"
    )
    assert retried["id"] == status["id"]
    assert status["media_attachments"][0]["description"] == "a red square"
    assert status["tags"][0]["name"] == "storm"
    (post,) = posts(simulator)
    assert post["platform"] == "mastodon" and post["remote_id"] == str(status["id"])
    assert post["text"] == "Hello #storm" and post["url"] == status["url"]
    assert post["media"] == [{"alt": "a red square", "size": 73, "mime": "image/png"}]


def test_mastodon_py_sees_the_errors(mastodon_client, simulator: str) -> None:
    from mastodon import Mastodon, MastodonAPIError, MastodonUnauthorizedError

    with pytest.raises(MastodonAPIError) as error:
        mastodon_client.status_post("x" * 501)
    assert error.value.args[1] == 422 and "character limit" in error.value.args[3]
    refused = Mastodon(access_token="invalid", api_base_url=simulator)
    try:
        with pytest.raises(MastodonUnauthorizedError):
            refused.account_verify_credentials()
    finally:
        refused.session.close()


# --- atproto (synchronous, httpx) ---------------------------------------------------------------

# The SDK itself passes raw bytes as `data=` to httpx in uploadBlob, which httpx deprecates;
# it does that against any server, so it is not the simulator's to fix.
ATPROTO_UPLOAD = "ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"


@pytest.mark.filterwarnings(ATPROTO_UPLOAD)
def test_atproto_sdk_posts_an_image_with_alt_text(simulator: str) -> None:
    from atproto import Client

    client = Client(base_url=simulator)
    try:
        profile = client.login("alice.test", "app-password")
        assert profile is not None and profile.handle == "alice.test"
        sent = client.send_image("Hello from atproto #storm", png_bytes(), "a red square")
        assert sent.uri.startswith(f"at://{profile.did}/app.bsky.feed.post/")
        rkey = sent.uri.rsplit("/", 1)[1]
        record = client.com.atproto.repo.get_record(
            {"repo": profile.did, "collection": "app.bsky.feed.post", "rkey": rkey}
        )
        assert record.cid == sent.cid
    finally:
        client.request.close()
    (post,) = posts(simulator)
    assert post["platform"] == "bluesky" and post["remote_id"] == sent.uri
    assert post["media"] == [{"alt": "a red square", "size": 73, "mime": "image/png"}]


def test_atproto_sdk_refreshes_and_the_old_token_is_revoked(simulator: str) -> None:
    from atproto import Client
    from atproto.exceptions import BadRequestError, UnauthorizedError

    # Access tokens that expire within the SDK's 15-minute margin: every call refreshes first.
    httpx.post(f"{simulator}/_sim/config", json={"bluesky_access_ttl_s": 60}).raise_for_status()
    client = Client(base_url=simulator)
    changes: list[str] = []
    client.on_session_change(lambda event, session: changes.append(session.refresh_jwt))
    try:
        client.login("bob.test", "pw")
        first_refresh = changes[0]
        client.send_post("refreshed before posting")
        # login, then a refresh before getProfile (inside login) and another before the post
        assert len(changes) == 3 and len(set(changes)) == 3 and changes[0] == first_refresh
        replay = httpx.post(
            f"{simulator}/xrpc/com.atproto.server.refreshSession",
            headers={"Authorization": f"Bearer {first_refresh}"},
        )
        assert replay.json() == {"error": "ExpiredToken", "message": "Token has been revoked"}
        with pytest.raises(BadRequestError):
            client.com.atproto.server.refresh_session(
                headers={"Authorization": f"Bearer {first_refresh}"}, ignore_session_check=True
            )
    finally:
        client.request.close()
    refused = Client(base_url=simulator)
    try:
        with pytest.raises(UnauthorizedError):
            refused.login("bob.test", "invalid-password")
    finally:
        refused.request.close()
    assert [p["text"] for p in posts(simulator)] == ["refreshed before posting"]


# --- python-telegram-bot (async, httpx) ---------------------------------------------------------


def test_python_telegram_bot_sends_messages_photos_and_albums(simulator: str) -> None:
    from telegram import Bot, InputMediaPhoto

    async def run() -> None:
        async with Bot("123456:SIMULATED", base_url=f"{simulator}/bot") as bot:
            assert (await bot.get_me()).id == 123456
            message = await bot.send_message("@storm", "Hello <b>Telegram</b>", parse_mode="HTML")
            assert message.chat.username == "storm" and message.text == "Hello Telegram"
            photo = await bot.send_photo("@storm", png_bytes(), caption="a picture")
            assert photo.caption == "a picture" and photo.photo[-1].width == 4
            album = await bot.send_media_group(
                "@storm",
                [
                    InputMediaPhoto(png_bytes(), caption="an album"),
                    InputMediaPhoto(photo.photo[-1].file_id),
                ],
            )
            assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id

    asyncio.run(run())
    sent = posts(simulator)
    assert [p["text"] for p in sent] == ["Hello Telegram", "a picture", "an album"]
    assert sent[0]["url"] == "https://t.me/storm/1" and len(sent[2]["media"]) == 2


# PTB 22.8 warns while *building* RetryAfter (its `retry_after` type will change), whatever
# the server: not the simulator's to fix.
@pytest.mark.filterwarnings(
    "ignore:Deprecated since version v22.2:telegram.warnings.PTBDeprecationWarning"
)
def test_python_telegram_bot_sees_auth_errors_and_flood_control(simulator: str) -> None:
    from telegram import Bot
    from telegram.error import InvalidToken, RetryAfter

    httpx.post(
        f"{simulator}/_sim/config", json={"rate_limit": {"telegram": {"limit": 2, "window_s": 60}}}
    ).raise_for_status()

    async def run() -> None:
        with pytest.raises(InvalidToken):
            async with Bot("invalid:token", base_url=f"{simulator}/bot"):
                pass
        async with Bot("7:FLOOD", base_url=f"{simulator}/bot") as bot:  # getMe is the first
            await bot.send_message(-100123, "one")
            with pytest.raises(RetryAfter) as flood:
                await bot.send_message(-100123, "two")
            assert 1 <= flood.value.retry_after <= 60

    asyncio.run(run())
    assert [p["text"] for p in posts(simulator)] == ["one"]


# --- matrix-nio (async, aiohttp) ----------------------------------------------------------------


def test_matrix_nio_logs_in_uploads_and_sends_once_per_txn(simulator: str) -> None:
    from nio import AsyncClient, LoginResponse, RoomSendResponse, UploadResponse

    async def run() -> tuple[str, str]:
        client = AsyncClient(simulator, "@storm:sim")
        try:
            assert isinstance(await client.login("pw", device_name="stormer"), LoginResponse)
            room = (await client.room_create(name="storm")).room_id
            image = png_bytes()
            upload, _ = await client.upload(
                lambda *_: image, content_type="image/png", filename="a.png", filesize=len(image)
            )
            assert isinstance(upload, UploadResponse)
            text = await client.room_send(
                room,
                "m.room.message",
                {"msgtype": "m.text", "body": "Hello Matrix"},
                tx_id="post-1",
            )
            again = await client.room_send(
                room,
                "m.room.message",
                {"msgtype": "m.text", "body": "Hello Matrix"},
                tx_id="post-1",
            )
            assert isinstance(text, RoomSendResponse) and again.event_id == text.event_id
            await client.room_send(
                room,
                "m.room.message",
                {
                    "msgtype": "m.image",
                    "url": upload.content_uri,
                    "body": "a red square",
                    "info": {"mimetype": "image/png", "size": len(image), "w": 4, "h": 3},
                },
                tx_id="post-1-image",
            )
            await client.sync(timeout=0)
            assert room in client.rooms
            return room, text.event_id
        finally:
            await client.close()

    room, event_id = asyncio.run(run())
    sent = posts(simulator)
    assert [(p["text"], p["target"]) for p in sent] == [("Hello Matrix", room), ("", room)]
    assert sent[0]["remote_id"] == event_id and sent[0]["account"] == "@storm:sim"
    assert sent[1]["media"] == [{"alt": "a red square", "size": 73, "mime": "image/png"}]


def test_matrix_nio_captions_an_image_and_refreshes_an_expired_token(simulator: str) -> None:
    """nio logs in to a device of its own with a refresh token (spec v1.3), meets the soft
    logout of an expired token as the spec says, and after a refresh resends an image
    captioned per spec v1.10 with the same transaction id: one event. nio 0.26 has no refresh
    call of its own: the refresh goes through its raw `send`, the rest through its API."""
    import json

    from nio import AsyncClient, LoginResponse, RoomSendError, RoomSendResponse

    def post_json(client: AsyncClient, path: str, body: dict) -> Any:
        return client.send("POST", path, json.dumps(body), {"Content-Type": "application/json"})

    async def run() -> tuple[str, str]:
        # The room and the image, from another device of the same user (never expires).
        setup = AsyncClient(simulator, "@storm:sim")
        client = AsyncClient(simulator, "@storm:sim", device_id="STORMDEVICE")
        try:
            assert isinstance(await setup.login("pw"), LoginResponse)
            room = (await setup.room_create(name="storm")).room_id
            image = png_bytes()
            upload, _ = await setup.upload(
                lambda *_: image, content_type="image/png", filename="a.png", filesize=len(image)
            )
            await post_json(setup, "/_sim/config", {"matrix_access_ttl_s": 0.3})
            login = await client.login_raw(
                {
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": "storm"},
                    "password": "pw",
                    "device_id": "STORMDEVICE",
                    "refresh_token": True,
                }
            )
            assert isinstance(login, LoginResponse) and login.device_id == "STORMDEVICE"
            refresh_token = (await login.transport_response.json())["refresh_token"]
            await asyncio.sleep(0.4)  # past the token's life (wall clock: never early)
            content = {
                "msgtype": "m.image",
                "url": upload.content_uri,
                "body": "Hello Matrix #storm",
                "filename": "a.png",
                "info": {"mimetype": "image/png", "size": len(image), "w": 4, "h": 3},
            }
            expired = await client.room_send(room, "m.room.message", content, tx_id="post-1")
            assert isinstance(expired, RoomSendError) and expired.soft_logout
            await post_json(setup, "/_sim/config", {"matrix_access_ttl_s": 600})
            answer = await post_json(
                client, "/_matrix/client/v3/refresh", {"refresh_token": refresh_token}
            )
            client.access_token = (await answer.json())["access_token"]
            sent = await client.room_send(room, "m.room.message", content, tx_id="post-1")
            again = await client.room_send(room, "m.room.message", content, tx_id="post-1")
            assert isinstance(sent, RoomSendResponse) and again.event_id == sent.event_id
            return room, sent.event_id
        finally:
            await setup.close()
            await client.close()

    room, event_id = asyncio.run(run())
    (sent,) = posts(simulator)
    assert (sent["text"], sent["target"], sent["remote_id"]) == (
        "Hello Matrix #storm",
        room,
        event_id,
    )
