"""Discord webhooks (https://discord.com/developers/docs/resources/webhook#execute-webhook).

JSON or multipart (`payload_json` + `files[n]`); `?wait=true` answers the message, without it
204. Content ≤ 2000 characters, ≤ 10 files and embeds, alt text (`description`) ≤ 1024.
No idempotency: a retry posts again, as on Discord.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import regex
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import media as sniffing
from ._web import body_json, file_bytes, form, is_form, json, received_at, sim
from .faults import Platform, RateLimit, retry_after_s
from .state import Media, Post, digest, unusable

if TYPE_CHECKING:
    from starlette.types import Scope

CONTENT_LIMIT, MAX_FILES, MAX_EMBEDS, DESCRIPTION_LIMIT = 2000, 10, 10, 1024
THREAD_NAME = 100
FILE_LIMIT = 10 * 1024 * 1024
WEBHOOK_PATH = regex.compile(r"^/api(?:/v\d+)?/webhooks/([^/]+)/([^/]+)")


@dataclass
class State:
    # message id → (webhook id, message)
    messages: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    forum_hooks: set[str] = field(default_factory=set)  # webhooks of forum channels


def _state(request: Request) -> State:
    return sim(request).store.space("discord", State)


def _error(
    status: int, message: str, code: int = 0, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return json({"message": message, "code": code, **extra}, status, headers)


def _invalid(field_name: str, code: str, message: str) -> Response:
    return json(
        {
            "code": 50035,
            "errors": {field_name: {"_errors": [{"code": code, "message": message}]}},
            "message": "Invalid Form Body",
        },
        400,
    )


def _webhook(hook_id: str, token: str) -> dict[str, Any]:
    h = digest("discord", hook_id)
    return {
        "id": hook_id,
        "type": 1,
        "guild_id": str(int(h[:15], 16)),
        "channel_id": str(int(h[15:30], 16)),
        "name": "Simulated webhook",
        "avatar": None,
        "application_id": None,
        "token": token,
    }


def _auth(request: Request) -> dict[str, Any] | Response:
    token = request.path_params["token"]
    if unusable(token):
        return _error(401, "Invalid Webhook Token", 50027)
    return _webhook(request.path_params["id"], token)


async def get_webhook(request: Request) -> Response:
    hook = _auth(request)
    return hook if isinstance(hook, Response) else json(hook)


async def _payload(request: Request) -> tuple[dict[str, Any], list[tuple[int, bytes, str]]] | None:
    """(payload, [(index, data, filename)]) from JSON or multipart; None if it doesn't parse."""
    if not is_form(request):
        body = await body_json(request)
        return (body, []) if isinstance(body, dict) else None
    payload: dict[str, Any] = {}
    uploads: list[tuple[int, bytes, str]] = []
    async with form(request) as data:
        for key, value in data.multi_items():
            part = await file_bytes(value)
            if part is None:
                if key == "payload_json":
                    try:
                        loaded = orjson.loads(str(value))
                    except orjson.JSONDecodeError:
                        return None
                    if not isinstance(loaded, dict):
                        return None
                    payload.update(loaded)
                else:
                    payload.setdefault(key, value)
                continue
            match = regex.fullmatch(r"files\[(\d+)\]|file(\d*)", key)
            index = int(next((g for g in match.groups() if g), "0")) if match else len(uploads)
            uploads.append((index, part[0], part[1] or f"file{index}"))
    return payload, uploads


def _thread(request: Request, hook: dict[str, Any], payload: dict[str, Any]) -> Response | None:
    """Refuse a thread_name or thread_id the webhook's channel cannot take.

    https://discord.com/developers/docs/resources/webhook#execute-webhook: `thread_name`
    creates a thread and "requires the webhook channel to be a forum channel"; a webhook of
    a forum or media channel must be given `thread_name` or `thread_id`, not both. The
    codes and messages: https://discord.com/developers/docs/topics/opcodes-and-status-codes
    #json (220001, 220002, 220003)."""
    name, thread_id = payload.get("thread_name"), request.query_params.get("thread_id")
    if hook["id"] in _state(request).forum_hooks:
        if not name and not thread_id:
            return _error(
                400,
                "Webhooks posted to forum channels must have a thread_name or thread_id",
                220001,
            )
        if name and thread_id:
            return _error(
                400,
                "Webhooks posted to forum channels cannot have both a thread_name and thread_id",
                220002,
            )
    elif name:
        return _error(400, "Webhooks can only create threads in forum channels", 220003)
    # https://discord.com/developers/docs/resources/channel#channel-object-channel-structure:
    # a channel's (and so a thread's) name is 1-100 characters.
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= THREAD_NAME):
        return _invalid(
            "thread_name", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {THREAD_NAME} in length."
        )
    return None


async def make_forum(request: Request) -> Response:
    """`POST /_sim/discord/forums {"webhook_id": ID}`: the webhook now belongs to a forum
    channel (Discord decides that when the webhook is made in one)."""
    body = await body_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("webhook_id"), str):
        return json({"error": 'the body must be {"webhook_id": "ID"}'}, 400)
    _state(request).forum_hooks.add(body["webhook_id"])
    return json({"ok": True})


async def execute(request: Request) -> Response:
    hook = _auth(request)
    if isinstance(hook, Response):
        return hook
    parsed = await _payload(request)
    if parsed is None:
        return _error(400, "The request body contains invalid JSON.", 50109)
    payload, uploads = parsed
    content = payload.get("content") or ""
    embeds = payload.get("embeds") or []
    if not isinstance(content, str):
        return _invalid("content", "STRING_TYPE_CONVERT", "Could not interpret as string.")
    if len(content) > CONTENT_LIMIT:
        return _invalid(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {CONTENT_LIMIT} or fewer in length."
        )
    if not isinstance(embeds, list) or len(embeds) > MAX_EMBEDS:
        return _invalid(
            "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."
        )
    if len(uploads) > MAX_FILES:
        return _invalid("files", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
    if any(len(data) > FILE_LIMIT for _, data, _ in uploads):
        return _error(413, "Request entity too large", 40005)
    if (
        not content.strip()
        and not embeds
        and not uploads
        and not payload.get("components")
        and not payload.get("poll")
    ):
        return _error(400, "Cannot send an empty message", 50006)
    described = {
        str(a.get("id")): a for a in payload.get("attachments") or [] if isinstance(a, dict)
    }
    attachments, media = [], []
    store = sim(request).store
    for index, data, filename in sorted(uploads, key=lambda u: u[0]):
        meta = described.get(str(index), {})
        description = meta.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > DESCRIPTION_LIMIT
        ):
            return _invalid(
                f"attachments.{index}.description",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {DESCRIPTION_LIMIT} or fewer in length.",
            )
        mime, width, height = sniffing.sniff(data)
        attachment_id = str(store.snowflake())
        name = meta.get("filename") or filename
        url = f"https://cdn.discordapp.com/attachments/{hook['channel_id']}/{attachment_id}/{name}"
        attachment: dict[str, Any] = {
            "id": attachment_id,
            "filename": name,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": mime,
        }
        if description is not None:
            attachment["description"] = description
        if width and height:
            attachment.update(width=width, height=height)
        attachments.append(attachment)
        media.append(Media(size=len(data), mime=mime, alt=description))

    refused = _thread(request, hook, payload)
    if refused is not None:
        return refused
    message_id = str(store.snowflake())
    # A new forum post's first message "has the same ID as the thread" (https://discord.com/
    # developers/docs/topics/threads#creating-threads-in-forum-and-media-channels).
    channel = (
        message_id
        if payload.get("thread_name")
        else request.query_params.get("thread_id") or hook["channel_id"]
    )
    arrived = received_at(request)
    message = {
        "id": message_id,
        "type": 0,
        "content": content,
        "channel_id": channel,
        "author": {
            "id": hook["id"],
            "username": str(payload.get("username") or hook["name"]),
            "avatar": None,
            "discriminator": "0000",
            "public_flags": 0,
            "flags": 0,
            "bot": True,
            "global_name": None,
        },
        "attachments": attachments,
        "embeds": embeds,
        "mentions": [],
        "mention_roles": [],
        "pinned": False,
        "mention_everyone": False,
        "tts": bool(payload.get("tts")),
        "timestamp": datetime.now(UTC).isoformat(),
        "edited_timestamp": None,
        "flags": 0,
        "components": [],
        "webhook_id": hook["id"],
    }
    _state(request).messages[message_id] = (hook["id"], message)
    store.add(
        Post(
            platform="discord",
            account=hook["id"],
            target=channel,
            text=content,
            media=media,
            remote_id=message_id,
            received_at=arrived,
            url=f"https://discord.com/channels/{hook['guild_id']}/{channel}/{message_id}",
        )
    )
    if request.query_params.get("wait", "").lower() in ("true", "1"):
        return json(message)
    return Response(status_code=204)


async def get_message(request: Request) -> Response:
    hook = _auth(request)
    if isinstance(hook, Response):
        return hook
    found = _state(request).messages.get(request.path_params["message_id"])
    if found is None or found[0] != hook["id"]:
        return _error(404, "Unknown Message", 10008)
    return json(found[1])


async def not_found(request: Request) -> Response:
    return _error(404, "404: Not Found", 0)


routes = (
    [
        Route(f"{prefix}/webhooks/{{id}}/{{token}}", endpoint, methods=[method])
        for prefix in ("/api", "/api/v{version:int}")
        for endpoint, method in ((get_webhook, "GET"), (execute, "POST"))
    ]
    + [
        Route(f"{prefix}/webhooks/{{id}}/{{token}}/messages/{{message_id}}", get_message)
        for prefix in ("/api", "/api/v{version:int}")
    ]
    + [Route("/_sim/discord/forums", make_forum, methods=["POST"])]
)


# https://discord.com/developers/docs/topics/rate-limits#header-format: every answer carries
# the bucket's Limit, Remaining, Reset (epoch seconds) and Reset-After (seconds, decimals),
# and its Bucket id, "non-inclusive of top-level resources in the path" (so one id for every
# webhook, each with a bucket of its own). The docs give no webhook figure; Discord staff
# gave 5 requests per 2 s per webhook (github.com/discord/discord-api-docs/issues/367):
# `SimConfig(rate_limit={"discord": RateLimit(5, 2.0)})`.
def _limit_headers(limit: RateLimit, remaining: int, reset_at: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit.limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{reset_at:.3f}",
        "X-RateLimit-Reset-After": f"{max(0.0, reset_at - time.time()):.3f}",
        "X-RateLimit-Bucket": "simulated-webhook",
    }


# https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit: a 429 with
# {message, retry_after (float seconds), global}, Retry-After, the bucket's headers, and
# X-RateLimit-Scope: `user` for a limit of one's own (the example "Exceeded User Rate Limit
# Response"); a webhook's bucket is spent by its own requests only.
def _rate_limited(limit: RateLimit, reset_at: float) -> Response:
    wait = max(0.001, reset_at - time.time())
    headers = {
        **_limit_headers(limit, 0, reset_at),
        "Retry-After": str(retry_after_s(reset_at)),
        "X-RateLimit-Scope": "user",
    }
    return json(
        {"message": "You are being rate limited.", "retry_after": round(wait, 3), "global": False},
        429,
        headers,
    )


def _account_of(scope: Scope) -> str | None:
    """The bucket: per webhook and per method ("Per-route rate limits ... may include the
    HTTP method", rate-limits#rate-limits), so reading the webhook spends no post."""
    match = WEBHOOK_PATH.match(scope["path"])
    return f"{scope['method']} {match.group(1)}" if match else None


PLATFORM = Platform(
    name="discord",
    owns=lambda path: WEBHOOK_PATH.match(path) is not None,
    is_post=lambda method, path: (
        method == "POST" and WEBHOOK_PATH.match(path) is not None and "/messages/" not in path
    ),
    account_of=_account_of,
    error=lambda status: _error(
        status,
        {500: "500: Internal Server Error", 502: "502: Bad Gateway"}.get(
            status, f"{status}: Error"
        ),
    ),
    rate_limited=_rate_limited,
    limit_headers=_limit_headers,
)
