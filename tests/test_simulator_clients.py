"""Real client libraries against the simulator, unchanged: what they post must show up in
`/_sim/posts`. If one of these needs a special case, the simulator is not faithful enough."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fixtures_sim import png_bytes
from timing import wait_until

if TYPE_CHECKING:
    import aiohttp


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


def _authorized_code(address: str) -> str:
    """The test as the organizer's browser: open the address, read the code shown."""
    import re

    page = httpx.get(address, timeout=10)
    assert page.status_code == 200, page.text
    found = re.search(r"<code>([^<]+)</code>", page.text)
    assert found, page.text
    return found.group(1)


def test_mastodon_py_registers_an_app_and_logs_in_with_a_code(simulator: str) -> None:
    from mastodon import Mastodon

    client_id, client_secret = Mastodon.create_app(
        "conformance", scopes=["read", "write:statuses", "write:media"], api_base_url=simulator
    )
    client = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=simulator)
    try:
        scopes = ["read", "write:statuses", "write:media"]
        # allow_http: Mastodon.py's switch for OAuth endpoints that are not https (tests).
        address = client.auth_request_url(scopes=scopes, allow_http=True)
        code = _authorized_code(address)
        token = client.log_in(code=code, scopes=scopes, allow_http=True)
        assert token and client.account_verify_credentials()["acct"]
        media = client.media_post(png_bytes(), mime_type="image/png", description="alt")
        wait_until("the media to be processed", lambda: client.media(media)["url"] is not None)
        client.status_post("logged in #storm", media_ids=[media])
        assert [p["text"] for p in posts(simulator)] == ["logged in #storm"]
        with pytest.raises(Exception, match="invalid_grant"):  # a code works once
            client.log_in(code=code, scopes=scopes, allow_http=True)
    finally:
        client.session.close()


def test_mastodon_py_token_without_a_scope_is_refused(simulator: str) -> None:
    from mastodon import Mastodon, MastodonAPIError

    client_id, client_secret = Mastodon.create_app(
        "read-only", scopes=["read"], api_base_url=simulator
    )
    client = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=simulator)
    try:
        address = client.auth_request_url(scopes=["read"], allow_http=True)
        client.log_in(code=_authorized_code(address), scopes=["read"], allow_http=True)
        assert client.account_verify_credentials()["acct"]  # read:accounts: granted by read
        with pytest.raises(MastodonAPIError) as refused:
            client.status_post("not allowed")
        assert refused.value.args[1] == 403
        assert refused.value.args[3] == "This action is outside the authorized scopes"
        with pytest.raises(MastodonAPIError) as no_upload:
            client.media_post(png_bytes(), mime_type="image/png")
        assert no_upload.value.args[1] == 403
        assert posts(simulator) == []
    finally:
        client.session.close()


def test_mastodon_py_meets_the_instance_limits(mastodon_client, simulator: str) -> None:
    from mastodon import MastodonAPIError

    httpx.post(
        f"{simulator}/_sim/config",
        json={
            "mastodon_max_characters": 1000,
            "mastodon_image_size_limit": 1000,
            "mastodon_description_limit": 10,
        },
        timeout=10,
    ).raise_for_status()
    config = mastodon_client.instance_v2()["configuration"]
    assert config["statuses"]["max_characters"] == 1000
    assert config["media_attachments"]["image_size_limit"] == 1000
    assert config["media_attachments"]["description_limit"] == 10
    mastodon_client.status_post("x" * 1000)  # more than 500: this instance allows it
    with pytest.raises(MastodonAPIError) as too_long:
        mastodon_client.status_post("x" * 1001)
    assert "character limit of 1000" in too_long.value.args[3]
    with pytest.raises(MastodonAPIError) as too_big:
        mastodon_client.media_post(png_bytes(padding=2000), mime_type="image/png")
    assert too_big.value.args[1] == 422
    assert too_big.value.args[3] == "Validation failed: File file size must be less than 1000 Bytes"
    with pytest.raises(MastodonAPIError) as long_alt:
        mastodon_client.media_post(png_bytes(), mime_type="image/png", description="x" * 11)
    assert "Description is too long (maximum is 10 characters)" in long_alt.value.args[3]


def _sim_now(simulator: str) -> datetime:
    return datetime.fromisoformat(httpx.get(f"{simulator}/_sim/clock", timeout=10).json()["now"])


def _clock_to(simulator: str, moment: datetime) -> None:
    answer = httpx.post(f"{simulator}/_sim/clock", json={"to": moment.isoformat()}, timeout=10)
    answer.raise_for_status()


def test_mastodon_py_schedules_moves_and_cancels_and_the_status_appears_at_its_time(
    mastodon_client, simulator: str
) -> None:
    from mastodon import MastodonAPIError, MastodonNotFoundError

    media = mastodon_client.media_post(png_bytes(), mime_type="image/png", description="alt")
    wait_until("the media to be processed", lambda: mastodon_client.media(media)["url"] is not None)
    at = (_sim_now(simulator) + timedelta(hours=1)).replace(microsecond=0)
    scheduled = mastodon_client.status_post("Later #storm", media_ids=[media], scheduled_at=at)
    assert scheduled["scheduled_at"] == at  # Mastodon.py parses the entity's time
    assert scheduled["params"]["text"] == "Later #storm"
    assert scheduled["media_attachments"][0]["description"] == "alt"
    dropped = mastodon_client.status_post("Never #storm", scheduled_at=at)
    assert {s["id"] for s in mastodon_client.scheduled_statuses()} == {
        scheduled["id"],
        dropped["id"],
    }
    later = at + timedelta(hours=2)
    moved = mastodon_client.scheduled_status_update(scheduled, later)
    assert moved["scheduled_at"] == later
    mastodon_client.scheduled_status_delete(dropped)
    with pytest.raises(MastodonNotFoundError):
        mastodon_client.scheduled_status(dropped)
    assert [s["id"] for s in mastodon_client.scheduled_statuses()] == [scheduled["id"]]
    with pytest.raises(MastodonAPIError) as too_soon:
        mastodon_client.status_post("Soon", scheduled_at=_sim_now(simulator) + timedelta(minutes=4))
    assert too_soon.value.args[1] == 422
    assert too_soon.value.args[3] == (
        "Validation failed: Scheduled at The scheduled date must be in the future"
    )

    _clock_to(simulator, later - timedelta(seconds=30))
    assert posts(simulator) == []  # never before its time, nor at the time it was moved from
    _clock_to(simulator, later)
    (post,) = posts(simulator)
    assert post["text"] == "Later #storm"
    assert post["media"] == [{"alt": "alt", "size": 73, "mime": "image/png"}]
    assert post["received_at"] == later.isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert mastodon_client.scheduled_statuses() == []
    assert len(posts(simulator)) == 1  # once
    status = mastodon_client.status(post["remote_id"])
    assert status["media_attachments"][0]["description"] == "alt"


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


@pytest.mark.filterwarnings(ATPROTO_UPLOAD)
def test_atproto_sdk_logs_in_on_the_entryway_and_posts_through_the_second_pds(
    simulator: str,
) -> None:
    """The SDK reads the PDS from the session's didDoc and sends everything there; its
    refresh (before each call: tokens expire within its 15-minute margin) goes there too
    and is forwarded to the entryway."""
    from atproto import Client

    httpx.post(f"{simulator}/_sim/config", json={"bluesky_access_ttl_s": 60}).raise_for_status()
    client = Client(base_url=simulator)
    refreshes: list[str] = []
    client.on_session_change(lambda event, session: refreshes.append(event.value))
    try:
        profile = client.login("carol.pds2.test", "app-password")
        assert client._base_url == f"{simulator}/pds2/xrpc"  # from the didDoc, not ours
        sent = client.send_image("Hello from the second PDS", png_bytes(), "a red square")
        access = client._session.access_jwt  # type: ignore[union-attr]
    finally:
        client.request.close()
    assert refreshes.count("refresh") >= 2
    (post,) = posts(simulator)
    assert post["account"] == "carol.pds2.test" and post["remote_id"] == sent.uri
    assert sent.uri.startswith(f"at://{profile.did}/")
    assert post["media"] == [{"alt": "a red square", "size": 73, "mime": "image/png"}]
    # The entryway refuses writes for an account it does not host, as the reference PDS does.
    refused = httpx.post(
        f"{simulator}/xrpc/com.atproto.repo.uploadBlob",
        headers={"Authorization": f"Bearer {access}", "Content-Type": "image/png"},
        content=png_bytes(),
    )
    assert refused.json() == {"error": "ExpiredToken", "message": "Token audience is out of date"}
    # …and the second PDS refuses a token for an account the entryway hosts.
    other = httpx.post(
        f"{simulator}/xrpc/com.atproto.server.createSession",
        json={"identifier": "dave.test", "password": "pw"},
    ).json()
    wrong = httpx.post(
        f"{simulator}/pds2/xrpc/com.atproto.repo.uploadBlob",
        headers={"Authorization": f"Bearer {other['accessJwt']}", "Content-Type": "image/png"},
        content=png_bytes(),
    )
    assert wrong.status_code == 401 and wrong.json()["message"] == "Bad token audience"


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


def test_python_telegram_bot_meets_the_photo_and_caption_limits_and_a_revoked_token(
    simulator: str,
) -> None:
    """sendPhoto's documented limits (https://core.telegram.org/bots/api#sendphoto: 10 MB,
    a 1024-character caption) as PTB's BadRequest; a token revoked after the bot started
    (@BotFather's /revoke) as its InvalidToken."""
    from telegram import Bot
    from telegram.error import BadRequest, InvalidToken

    async def run() -> None:
        async with Bot("99:REVOKED-LATER", base_url=f"{simulator}/bot") as bot:
            with pytest.raises(BadRequest, match="too big"):
                await bot.send_photo(
                    "@storm", png_bytes(padding=10 * 1024 * 1024), write_timeout=60
                )
            with pytest.raises(BadRequest, match="caption is too long"):
                await bot.send_photo("@storm", png_bytes(), caption="c" * 1025)
            await bot.send_photo("@storm", png_bytes(), caption="c" * 1024)
            async with httpx.AsyncClient() as control:
                revoked = await control.post(
                    f"{simulator}/_sim/telegram/revoke", json={"token": "99:REVOKED-LATER"}
                )
                revoked.raise_for_status()
            with pytest.raises(InvalidToken):
                await bot.get_me()

    asyncio.run(run())
    assert [p["text"] for p in posts(simulator)] == ["c" * 1024]


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


# --- tweepy (synchronous, requests) -------------------------------------------------------------
# tweepy 4.17 calls https://api.twitter.com and https://twitter.com, written into tweepy.client
# and tweepy.auth; an adapter on its requests session sends those requests to the simulator
# instead, leaving tweepy itself unchanged. OAuth 1.0a signatures keep naming api.twitter.com,
# which the simulator accepts as the host it stands in for. tweepy 4.17 has no v2 media upload
# (its `API.media_upload` is v1.1, which the simulator does not serve), so the image goes up
# through POST /2/media/upload signed by tweepy's own OAuth 1.0a handler; the post itself is
# tweepy's `Client.create_tweet`.


def _to_simulator(session, simulator: str) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import urlsplit

    from requests.adapters import HTTPAdapter

    class ToSimulator(HTTPAdapter):
        def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
            parts = urlsplit(request.url)
            request.url = simulator + parts.path + (f"?{parts.query}" if parts.query else "")
            return super().send(request, **kwargs)

    session.mount("https://", ToSimulator())


TWEEPY_OAUTH1 = {  # the simulator's test convention: each secret is its key + "-secret"
    "consumer_key": "tweepy-ck",
    "consumer_secret": "tweepy-ck-secret",
    "access_token": "tweepy-at",
    "access_token_secret": "tweepy-at-secret",
}


def test_tweepy_posts_text_and_an_image_with_oauth1(simulator: str) -> None:
    import tweepy

    client = tweepy.Client(**TWEEPY_OAUTH1)
    _to_simulator(client.session, simulator)
    signer = tweepy.OAuth1UserHandler(**TWEEPY_OAUTH1).apply_auth()
    upload = client.session.post(
        "https://api.twitter.com/2/media/upload",
        data={"media_category": "tweet_image"},
        files={"media": ("square.png", png_bytes(), "image/png")},
        auth=signer,
    )
    media_id = upload.json()["data"]["id"]
    client.session.post(
        "https://api.twitter.com/2/media/metadata",
        json={"id": media_id, "metadata": {"alt_text": {"text": "a red square"}}},
        auth=signer,
    ).raise_for_status()
    text = client.create_tweet(text="tweepy, OAuth 1.0a").data
    image = client.create_tweet(text="tweepy with an image", media_ids=[media_id]).data
    landed = {p["remote_id"]: p for p in posts(simulator)}
    assert landed[text["id"]]["text"] == "tweepy, OAuth 1.0a"
    assert landed[image["id"]]["media"] == [
        {"alt": "a red square", "size": len(png_bytes()), "mime": "image/png"}
    ]
    forged = tweepy.Client(**{**TWEEPY_OAUTH1, "consumer_secret": "wrong"})
    _to_simulator(forged.session, simulator)
    with pytest.raises(tweepy.Unauthorized):
        forged.create_tweet(text="never posted")
    assert len(posts(simulator)) == 2


def test_tweepy_pkce_login_post_and_refresh_with_rotation(
    simulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tweepy

    # oauthlib refuses an http:// redirect unless told; X allows http://127.0.0.1 callbacks.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    handler = tweepy.OAuth2UserHandler(
        client_id="tweepy-app",
        redirect_uri="http://127.0.0.1:1/callback",
        scope=["tweet.read", "tweet.write", "users.read", "media.write", "offline.access"],
    )
    _to_simulator(handler, simulator)
    consent = handler.get_authorization_url()  # https://twitter.com/i/oauth2/authorize?…
    query = consent.split("?", 1)[1]
    redirected = httpx.get(f"{simulator}/i/oauth2/authorize?{query}", timeout=10)
    token = handler.fetch_token(redirected.headers["location"])
    assert token["expires_in"] == 7200 and token["refresh_token"]

    client = tweepy.Client(token["access_token"])  # an OAuth 2.0 user token
    _to_simulator(client.session, simulator)
    me = client.get_me(user_auth=False).data
    client.create_tweet(text="tweepy, OAuth 2.0", user_auth=False)

    renewed = handler.refresh_token(
        "https://api.twitter.com/2/oauth2/token",
        refresh_token=token["refresh_token"],
        client_id="tweepy-app",
    )
    assert renewed["refresh_token"] != token["refresh_token"]
    client = tweepy.Client(renewed["access_token"])
    _to_simulator(client.session, simulator)
    client.create_tweet(text="tweepy, after a refresh", user_auth=False)
    assert client.get_me(user_auth=False).data.id == me.id
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    with pytest.raises(OAuth2Error) as refused:  # X rotated it: the old one is spent
        handler.refresh_token(
            "https://api.twitter.com/2/oauth2/token",
            refresh_token=token["refresh_token"],
            client_id="tweepy-app",
        )
    assert refused.value.error == "invalid_request"
    assert [p["text"] for p in posts(simulator)] == ["tweepy, OAuth 2.0", "tweepy, after a refresh"]
    assert {p["account"] for p in posts(simulator)} == {me.username}


def test_tweepy_sees_an_expired_token_and_a_missing_scope(simulator: str) -> None:
    import tweepy

    httpx.post(f"{simulator}/_sim/config", json={"x_access_ttl_s": 0}).raise_for_status()
    expired = _oauth2_token(simulator, "tweet.read tweet.write users.read")
    client = tweepy.Client(expired)
    _to_simulator(client.session, simulator)
    with pytest.raises(tweepy.Unauthorized):
        client.create_tweet(text="too late", user_auth=False)
    httpx.post(f"{simulator}/_sim/config", json={"x_access_ttl_s": 7200}).raise_for_status()
    read_only = tweepy.Client(_oauth2_token(simulator, "tweet.read users.read"))
    _to_simulator(read_only.session, simulator)
    with pytest.raises(tweepy.Forbidden):
        read_only.create_tweet(text="no tweet.write", user_auth=False)
    assert posts(simulator) == []


def _oauth2_token(simulator: str, scope: str) -> str:
    """A user token for `scope`, obtained as a browser and an app would (plain PKCE)."""
    with httpx.Client(base_url=simulator, timeout=10) as http:
        redirect = http.get(
            "/i/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": "app",
                "redirect_uri": "http://127.0.0.1:1/cb",
                "scope": scope,
                "state": "s",
                "code_challenge": "verifier-of-at-least-43-characters-for-plain-pkce",
                "code_challenge_method": "plain",
            },
        ).headers["location"]
        code = redirect.split("code=", 1)[1]
        return str(
            http.post(
                "/2/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "client_id": "app",
                    "redirect_uri": "http://127.0.0.1:1/cb",
                    "code_verifier": "verifier-of-at-least-43-characters-for-plain-pkce",
                },
            ).json()["access_token"]
        )


# --- discord.py's webhook client (async, aiohttp) ------------------------------------------------

# discord.py sends to its own base, https://discord.com/api/v10 (`discord.http.Route.BASE`,
# not a documented setting), whatever host the webhook URL named. Its requests reach the
# simulator through aiohttp's documented client middleware (aiohttp >= 3.12, "Client
# Middleware Cookbook"), which points a request for discord.com at the simulator's address
# before it is sent; discord.py's code is not touched.
WEBHOOK_ID, WEBHOOK_TOKEN = "112233445566778899", "T" * 68  # the shape from_url accepts
# discord.py imports audioop (for voice) on Python 3.11, which warns: not the simulator's to fix.
AUDIOOP = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")


def discord_session(simulator: str) -> aiohttp.ClientSession:
    import aiohttp
    from yarl import URL

    local = URL(simulator)

    async def to_simulator(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if request.url.host == "discord.com":
            request.url = request.url.with_scheme(local.scheme).with_host(local.host or "")
            request.url = request.url.with_port(local.port)
        return await handler(request)

    return aiohttp.ClientSession(middlewares=(to_simulator,))


@AUDIOOP
def test_discord_py_posts_an_image_with_alt_text_and_waits_out_the_bucket(
    simulator: str,
) -> None:
    """Text + a file described by its alt text, `wait=True`; then more posts than the
    webhook's bucket holds (5 per 2 s: discord-api-docs#367), which discord.py paces from
    the X-RateLimit headers alone. (It takes a 429 without a Via header for a Cloudflare
    ban and raises; the simulator sends no Via, so a 429 would fail this test.)"""
    import io

    import discord

    httpx.post(
        f"{simulator}/_sim/config", json={"rate_limit": {"discord": {"limit": 5, "window_s": 2}}}
    ).raise_for_status()

    async def run() -> list[discord.WebhookMessage]:
        async with discord_session(simulator) as session:
            webhook = discord.Webhook.from_url(
                f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}", session=session
            )
            image = discord.File(io.BytesIO(png_bytes()), "flag.png", description="A flag")
            sent = [await webhook.send("Free them all", file=image, wait=True)]
            for n in range(6):
                sent.append(await webhook.send(f"again {n}", wait=True))
            return sent

    sent = asyncio.run(run())
    assert sent[0].attachments[0].description == "A flag"
    landed = posts(simulator)
    assert [p["text"] for p in landed] == ["Free them all"] + [f"again {n}" for n in range(6)]
    assert landed[0]["media"][0]["alt"] == "A flag"
    arrived = [datetime.fromisoformat(p["received_at"]) for p in landed]
    assert arrived[5] - arrived[0] >= timedelta(seconds=1.9)  # the sixth waited for the reset


@AUDIOOP
def test_discord_py_creates_a_forum_post_with_thread_name(simulator: str) -> None:
    import discord

    httpx.post(
        f"{simulator}/_sim/discord/forums", json={"webhook_id": WEBHOOK_ID}
    ).raise_for_status()

    async def run() -> discord.WebhookMessage:
        async with discord_session(simulator) as session:
            webhook = discord.Webhook.from_url(
                f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}", session=session
            )
            with pytest.raises(discord.HTTPException) as refused:
                await webhook.send("no title", wait=True)
            assert refused.value.code == 220001
            return await webhook.send("Free them all", thread_name="The storm", wait=True)

    message = asyncio.run(run())
    assert message.channel.id == message.id  # the new post's thread has its first message's id
    assert [p["text"] for p in posts(simulator)] == ["Free them all"]


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
