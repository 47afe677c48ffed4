"""Discord webhook sending, against a fake webhook endpoint behind httpx.MockTransport.

The webhook URL is the credential: the fake accepts only WEBHOOK's webhook, on any API
version or none, as Discord does (https://discord.com/developers/docs/reference#api-versioning),
answers GET with the webhook object (which, like Discord's, repeats the token) and POST
?wait=true with the created message."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import regex
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
from stormer.channels.discord import Discord
from stormer.dispatch.sending import send_staged
from stormer.errors import AuthError, OutcomeUnknown, RateLimited, Rejected
from stormer.queue import MediaRef, QueueItem
from stormer.secrets import Secret
from stormer.storm import Account

WEBHOOK = "https://discord.com/api/webhooks/1/SECRET-hook"
HOOK_PATH = regex.compile(r"/api(?:/v\d+)?/webhooks/1/SECRET-hook")
DELETED = "https://discord.com/api/webhooks/2/SECRET-gone"
TEXT = "Education is a right, not a privilege. #FreePalestinianStudents"
TOO_LONG = {
    "code": 50035,
    "message": "Invalid Form Body",
    "errors": {
        "content": {
            "_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
            ]
        },
        "attachments": {
            "1": {
                "description": {
                    "_errors": [
                        {
                            "code": "BASE_TYPE_MAX_LENGTH",
                            "message": "Must be 1024 or fewer in length.",
                        }
                    ]
                }
            }
        },
    },
}
T = TypeVar("T")


class FakeWebhook:
    """One webhook in guild 900, channel 800. Records every message it accepts.

    `answer` replaces the reply to executions; `timeout_after_send` records the message and
    then loses the answer (the client sees a read timeout). With `bucket` set, executions
    spend it and every answer carries X-RateLimit headers (refilling after `reset_after`
    seconds is the test's to do); an execution on an empty bucket is a 429, counted."""

    def __init__(self, *, guild_id: str | None = "900") -> None:
        self.guild_id = guild_id
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.gets = 0
        self.urls: list[str] = []  # every request's URL, without its query
        self.answer: httpx.Response | None = None
        self.timeout_after_send = False
        self.bucket: int | None = None
        self.reset_after = 2.0
        self.limited = 0

    def limit_headers(self) -> dict[str, str]:
        if self.bucket is None:
            return {}
        return {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": str(max(self.bucket, 0)),
            "X-RateLimit-Reset-After": str(self.reset_after),
            "X-RateLimit-Bucket": "abcd1234",
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url.copy_with(query=None)))
        if request.url.host != "discord.com" or not HOOK_PATH.fullmatch(request.url.path):
            return httpx.Response(404, json={"message": "Unknown Webhook", "code": 10015})
        if request.method == "GET":
            self.gets += 1
            return httpx.Response(
                200,
                json={
                    "id": "1",
                    "type": 1,
                    "guild_id": self.guild_id,
                    "channel_id": "800",
                    "name": "Storm",
                    "avatar": None,
                    "application_id": None,
                    "token": "SECRET-hook",
                },
            )
        if self.answer is not None:
            return self.answer
        if self.bucket is not None:
            if self.bucket == 0:
                self.limited += 1
                return httpx.Response(
                    429,
                    headers={**self.limit_headers(), "X-RateLimit-Scope": "user"},
                    json={"message": "You are being rate limited.", "retry_after": 1.5},
                )
            self.bucket -= 1
        self.received.append((dict(request.url.params), form(request)))
        if self.timeout_after_send:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(
            200,
            headers=self.limit_headers(),
            json={
                "id": str(5000 + len(self.received)),
                "channel_id": "800",
                "webhook_id": "1",
                "content": TEXT,
                "attachments": [],
            },
        )


def account() -> Account:
    return account_for("discord", ("webhook_url", "FPS_DISCORD_WEBHOOK_URL"))


def item(*media: MediaRef) -> QueueItem:
    return post_item("discord", TEXT, media)


def run(
    server: FakeWebhook,
    scenario: Callable[[Connection], Awaitable[T]],
    *,
    webhook: str = WEBHOOK,
    state: dict[str, Any] | None = None,
    media_root: Path | None = None,
) -> T:
    credentials = {"webhook_url": webhook}
    return run_against(server, scenario, account(), credentials, state=state, media_root=media_root)


async def stage_and_publish(conn: Connection, queued: QueueItem | None = None) -> Any:
    return await publish(Discord(), queued or item(), conn)


def test_verify_names_the_webhook_and_keeps_its_guild_but_not_its_token() -> None:
    state: dict[str, Any] = {}
    saved: list[dict[str, Any]] = []

    async def scenario(conn: Connection) -> str:
        conn.on_state_change = lambda s: saved.append(dict(s))
        return await Discord().verify(conn)

    assert run(FakeWebhook(), scenario, state=state) == "webhook 'Storm' in channel 800"
    assert state == {"guild_id": "900", "channel_id": "800", "webhook_name": "Storm"}
    assert saved == [state]


def test_text_post_is_json_with_wait_and_a_channel_permalink() -> None:
    server = FakeWebhook()
    published = run(server, stage_and_publish)
    assert server.received == [
        ({"wait": "true"}, {"content": TEXT, "allowed_mentions": {"parse": []}})
    ]
    assert published.remote_id == "5001"
    assert published.permalink == "https://discord.com/channels/900/800/5001"


def test_images_are_files_with_their_alt_text_in_payload_json(
    images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    server = FakeWebhook()
    run(server, lambda conn: stage_and_publish(conn, item(*images)), media_root=tmp_path)
    [(params, fields)] = server.received
    assert params == {"wait": "true"}
    assert set(fields) == {"payload_json", "files[0]", "files[1]"}
    assert json.loads(fields["payload_json"]) == {
        "content": TEXT,
        "allowed_mentions": {"parse": []},
        "attachments": [
            {"id": 0, "filename": "banner.png", "description": "A banner"},
            {"id": 1, "filename": "photo.jpg", "description": "Students at a gate"},
        ],
    }
    assert fields["files[0]"] == ("banner.png", PNG, "image/png")
    assert fields["files[1]"] == ("photo.jpg", JPEG, "image/jpeg")


def test_the_guild_is_asked_once_per_account() -> None:
    server, state = FakeWebhook(), {"guild_id": "901"}
    published = run(server, stage_and_publish, state=state)
    assert server.gets == 0
    assert published.permalink == "https://discord.com/channels/901/800/5001"


def test_no_permalink_without_a_known_guild() -> None:
    published = run(FakeWebhook(guild_id=None), stage_and_publish)
    assert published.remote_id == "5001" and published.permalink is None


def test_a_webhook_url_with_its_own_query_keeps_it() -> None:
    server = FakeWebhook()
    run(server, stage_and_publish, webhook=WEBHOOK + "?thread_id=77")
    assert server.received[0][0] == {"thread_id": "77", "wait": "true"}


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (
            {"Retry-After": "2"},
            {"message": "You are being rate limited.", "retry_after": 1.337, "global": False},
            1.337,
        ),
        ({"Retry-After": "7"}, None, 7.0),  # Cloudflare's 429 has no JSON body
    ],
)
def test_rate_limit_uses_discords_retry_after(
    headers: dict[str, str], body: Any, expected: float
) -> None:
    server = FakeWebhook()
    server.answer = (
        httpx.Response(429, headers=headers, json=body)
        if body is not None
        else httpx.Response(429, headers=headers, text="error code: 1015")
    )
    with pytest.raises(RateLimited) as caught:
        run(server, stage_and_publish, state={"guild_id": "900"})
    assert caught.value.retry_after == pytest.approx(expected)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"message": "Unknown Webhook", "code": 10015}),
        (401, {"message": "Invalid Webhook Token", "code": 50027}),
    ],
)
def test_a_deleted_webhook_is_an_auth_error(status: int, body: dict[str, Any]) -> None:
    server = FakeWebhook()
    server.answer = httpx.Response(status, json=body)
    with pytest.raises(AuthError, match="deleted or its URL is wrong") as caught:
        run(server, stage_and_publish, state={"guild_id": "900"})
    assert body["message"] in str(caught.value)


def test_a_deleted_webhook_is_found_while_staging() -> None:
    server = FakeWebhook()
    with pytest.raises(AuthError, match="Unknown Webhook"):
        run(server, stage_and_publish, webhook=DELETED)
    assert server.received == []


def test_a_webhook_url_that_is_no_url_is_an_auth_error() -> None:
    with pytest.raises(AuthError, match="not a URL") as caught:
        run(FakeWebhook(), stage_and_publish, webhook="SECRET-pasted-token-only")
    assert "SECRET" not in str(caught.value)


def test_too_long_is_rejected_with_the_field_errors() -> None:
    server = FakeWebhook()
    server.answer = httpx.Response(400, json=TOO_LONG)
    with pytest.raises(Rejected) as caught:
        run(server, stage_and_publish, state={"guild_id": "900"})
    assert str(caught.value) == (
        "discord: Invalid Form Body: content: Must be 2000 or fewer in length.; "
        "attachments.1.description: Must be 1024 or fewer in length."
    )


def test_a_server_error_after_sending_is_an_unknown_outcome() -> None:
    server = FakeWebhook()
    server.answer = httpx.Response(500, json={"message": "Internal Server Error"})
    with pytest.raises(OutcomeUnknown):
        run(server, stage_and_publish, state={"guild_id": "900"})


class GatewayUnavailableOnce(FakeWebhook):
    """Answers the first execution with Discord's documented 502 (the request not processed:
    https://discord.com/developers/docs/topics/opcodes-and-status-codes#http), then as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.unavailable = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and not self.unavailable:
            self.unavailable += 1
            return httpx.Response(502, json={"message": "502: Bad Gateway", "code": 0})
        return super().__call__(request)


def test_a_502_gateway_unavailable_was_not_processed_and_is_sent_again_once() -> None:
    server = GatewayUnavailableOnce()

    async def scenario(conn: Connection) -> Any:
        staged = await Discord().stage(item(), conn)
        return await send_staged(Discord(), staged, conn, attempts=3, sleep=no_wait)

    result = run(server, scenario, state={"guild_id": "900"})
    assert result.outcome == "sent" and result.attempts == 2
    assert server.unavailable == 1 and len(server.received) == 1  # landed once, not twice


async def no_wait(_: float) -> None:
    return None


def test_a_timeout_after_sending_is_unknown_and_never_resent() -> None:
    server = FakeWebhook()
    server.timeout_after_send = True

    # Webhooks cannot tell: the organizer decides.
    assert run(server, lost_then_reconciled(Discord(), item())) is None
    assert len(server.received) == 1  # the message landed once; reconcile sent nothing


def test_the_webhook_url_appears_in_no_error_repr_or_log(
    caplog: pytest.LogCaptureFixture, images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakeWebhook()
    error = httpx.Response(500, json={"message": "Internal Server Error"})
    scenario = what_sending_shows(Discord(), item(*images), server, server_error=error)
    texts = run(server, scenario, media_root=tmp_path)
    with pytest.raises(AuthError) as deleted:
        run(FakeWebhook(), stage_and_publish, webhook=DELETED)
    texts.extend(shown(deleted.value))

    logged = [r.getMessage() for r in caplog.records]
    assert any("HTTP Request: POST <redacted>?wait=true" in m for m in logged), logged
    assert "Request(POST <redacted>)" in texts[1]
    assert_nowhere(["SECRET", "webhooks/"], texts, caplog)


@pytest.mark.parametrize(
    "pasted",
    [
        WEBHOOK,
        "https://discordapp.com/api/webhooks/1/SECRET-hook",
        "https://ptb.discord.com/api/webhooks/1/SECRET-hook",
        "https://canary.discordapp.com/api/v9/webhooks/1/SECRET-hook/",
        "https://discord.com/api/v10/webhooks/1/SECRET-hook",
    ],
)
def test_every_form_of_a_webhook_url_is_sent_to_the_current_api_version(pasted: str) -> None:
    server = FakeWebhook()
    run(server, stage_and_publish, webhook=pasted)
    assert set(server.urls) == {"https://discord.com/api/v10/webhooks/1/SECRET-hook"}
    assert server.gets == 1 and len(server.received) == 1


def test_a_webhook_on_another_server_keeps_its_server_and_gets_the_version() -> None:
    seen: list[str] = []

    def elsewhere(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        request.url = request.url.copy_with(scheme="https", host="discord.com", port=None)
        return FakeWebhook()(request)

    run(elsewhere, stage_and_publish, webhook="http://127.0.0.1:8080/api/webhooks/1/SECRET-hook")
    assert seen[-1] == "http://127.0.0.1:8080/api/v10/webhooks/1/SECRET-hook?wait=true"


def test_a_url_that_is_no_webhook_is_an_auth_error() -> None:
    with pytest.raises(AuthError, match="not a URL of the form") as caught:
        run(FakeWebhook(), stage_and_publish, webhook="https://discord.com/channels/1/SECRET")
    assert "SECRET" not in str(caught.value)


# --- rate limits: https://discord.com/developers/docs/topics/rate-limits ---------------------


def test_an_empty_bucket_waits_for_its_reset_instead_of_drawing_a_429() -> None:
    server = FakeWebhook()
    server.bucket, server.reset_after = 2, 1.5

    async def scenario(conn: Connection) -> RateLimited:
        await stage_and_publish(conn)
        await stage_and_publish(conn)  # the answer says: Remaining 0, reset in 1.5 s
        with pytest.raises(RateLimited) as caught:
            await stage_and_publish(conn)
        return caught.value

    limited = run(server, scenario)
    assert 0 < limited.retry_after <= 1.5 and "bucket is empty" in str(limited)
    assert len(server.received) == 2 and server.limited == 0  # never sent, so no 429


def test_the_bucket_is_used_again_once_it_has_reset() -> None:
    server = FakeWebhook()
    server.bucket, server.reset_after = 1, 0.2

    async def scenario(conn: Connection) -> None:
        await stage_and_publish(conn)
        await asyncio.sleep(0.25)  # past the reset: only ever longer on a loaded machine
        server.bucket = 1
        await stage_and_publish(conn)

    run(server, scenario)
    assert len(server.received) == 2 and server.limited == 0


def test_requests_in_flight_together_do_not_share_the_last_slot() -> None:
    server = FakeWebhook()
    state: dict[str, Any] = {"guild_id": "900"}

    async def scenario(conn: Connection) -> list[Any]:
        staged = [await Discord().stage(item(), conn) for _ in range(2)]
        conn.state["rate_limit"] = {"remaining": 1, "reset_at": time.monotonic() + 30}
        return await asyncio.gather(
            *(Discord().publish(s, conn) for s in staged), return_exceptions=True
        )

    outcomes = run(server, scenario, state=state)
    assert sorted(type(o).__name__ for o in outcomes) == ["Published", "RateLimited"]
    assert len(server.received) == 1


# The 429's wait: long enough that the second request comes within it however loaded the
# machine (at 1.337 s it sometimes came after, and was sent); decimals, as Discord gives them.
WAIT = 31.337


@pytest.mark.parametrize(
    ("headers", "body", "scope"),
    [
        ({"X-RateLimit-Scope": "user"}, {"retry_after": WAIT, "global": False}, "user"),
        ({"X-RateLimit-Scope": "shared"}, {"retry_after": WAIT, "global": False}, "shared"),
        ({"X-RateLimit-Global": "true"}, {"retry_after": WAIT, "global": True}, "global"),
    ],
)
def test_a_429_says_whose_limit_it_is_and_the_next_request_waits_for_it(
    headers: dict[str, str], body: dict[str, Any], scope: str
) -> None:
    server = FakeWebhook()
    server.answer = httpx.Response(
        429, headers={"Retry-After": "32", **headers}, json={"message": "Slow down", **body}
    )

    async def scenario(conn: Connection) -> tuple[RateLimited, RateLimited]:
        staged = await Discord().stage(item(), conn)
        with pytest.raises(RateLimited) as first:
            await Discord().publish(staged, conn)
        server.answer = None
        with pytest.raises(RateLimited) as second:
            await Discord().publish(staged, conn)
        return first.value, second.value

    first, second = run(server, scenario)
    assert first.retry_after == pytest.approx(WAIT)  # the body's, not Retry-After's 32
    assert f"Slow down ({scope} limit)" in str(first)
    assert 0 < second.retry_after <= WAIT
    assert server.received == []  # the second was never sent


def test_against_the_simulator_a_webhook_posts_past_its_bucket_without_a_429(
    simulator: str,
) -> None:
    """The simulator with the bucket Discord staff gave for a webhook (5 per 2 s,
    discord-api-docs#367): seven posts in a row through `send_staged` (what the dispatcher
    does) all land, once each, and not one request draws a 429."""
    httpx.post(
        f"{simulator}/_sim/config", json={"rate_limit": {"discord": {"limit": 5, "window_s": 2}}}
    ).raise_for_status()
    statuses: list[int] = []

    async def main() -> list[str]:
        async def seen(response: httpx.Response) -> None:
            statuses.append(response.status_code)

        async with httpx.AsyncClient(event_hooks={"response": [seen]}) as client:
            conn = Connection(
                account(),
                client,
                {"webhook_url": Secret(f"{simulator}/api/webhooks/31/tok-discord-31")},
            )
            outcomes = []
            for n in range(7):
                staged = await Discord().stage(post_item("discord", f"post {n}"), conn)
                result = await send_staged(Discord(), staged, conn, attempts=3)
                outcomes.append(result.outcome)
            return outcomes

    assert asyncio.run(main()) == ["sent"] * 7
    landed = httpx.get(f"{simulator}/_sim/posts", params={"platform": "discord"}).json()
    assert [p["text"] for p in landed] == [f"post {n}" for n in range(7)]
    assert 429 not in statuses and statuses.count(200) == 8  # the GET of the webhook, 7 posts


# --- forum channels: https://discord.com/developers/docs/resources/webhook#execute-webhook ---


def forum_account(title: str | None) -> Account:
    return account_for("discord", ("webhook_url", "FPS_DISCORD_WEBHOOK_URL"), target=title)


def test_the_accounts_target_is_the_forum_posts_title(
    images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    server = FakeWebhook()
    credentials = {"webhook_url": WEBHOOK}
    for media in ((), images):
        run_against(
            server,
            lambda conn, media=media: stage_and_publish(conn, item(*media)),
            forum_account("Free them all"),
            credentials,
            media_root=tmp_path,
        )
    text, multipart = (fields for _, fields in server.received)
    assert text["thread_name"] == "Free them all"
    assert json.loads(multipart["payload_json"])["thread_name"] == "Free them all"


def test_a_forum_posts_title_over_discords_limit_is_a_problem_before_t() -> None:
    payload = Discord().render(item(), forum_account("t" * 101))
    assert payload.problems == [
        "target (the forum post's title) is 101 characters > 100 (Discord limit)"
    ]
    assert Discord().render(item(), forum_account("t" * 100)).problems == []


def sim_flow(simulator: str, hook: str, title: str | None, flow: Any) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient() as client:
            webhook = Secret(f"{simulator}/api/webhooks/{hook}/tok-discord-{hook}")
            conn = Connection(forum_account(title), client, {"webhook_url": webhook})
            return await flow(conn)

    return asyncio.run(main())


def test_against_the_simulator_a_forum_webhook_needs_the_posts_title(simulator: str) -> None:
    httpx.post(f"{simulator}/_sim/discord/forums", json={"webhook_id": "77"}).raise_for_status()
    with pytest.raises(Rejected) as untitled:
        sim_flow(simulator, "77", None, stage_and_publish)
    assert "must have a thread_name or thread_id" in str(untitled.value)
    assert 'target = "the title of the post"' in str(untitled.value)

    published = sim_flow(simulator, "77", "Free them all", stage_and_publish)
    (landed,) = httpx.get(f"{simulator}/_sim/posts").json()
    # The new post (a thread) has the id of its first message: the permalink is inside it.
    guild = published.permalink.split("/")[4]
    assert published.permalink == (
        f"https://discord.com/channels/{guild}/{published.remote_id}/{published.remote_id}"
    )
    assert landed["url"] == published.permalink and landed["text"] == TEXT


def test_against_the_simulator_a_title_outside_a_forum_is_refused(simulator: str) -> None:
    with pytest.raises(Rejected, match="no forum: remove the account's target"):
        sim_flow(simulator, "78", "Free them all", stage_and_publish)
    assert httpx.get(f"{simulator}/_sim/posts").json() == []
