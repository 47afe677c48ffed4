"""Telegram Bot API, the sending part (https://core.telegram.org/bots/api).

`/bot<token>/<method>` with parameters in the query string, a form, a multipart body or
JSON, as the real server takes them, and every answer `{ok, result}` or `{ok: false,
error_code, description, parameters}` (https://core.telegram.org/bots/api#making-requests).
Lengths are counted in UTF-16 code units after `parse_mode=HTML` markup is removed: text ≤
4096, caption ≤ 1024. No idempotency: a retry sends again. Bot tokens do not expire; @BotFather
can revoke one (https://core.telegram.org/bots/features#botfather): `POST /_sim/telegram/revoke
{"token": T}` does that here, and the token is refused from then on.
"""

from __future__ import annotations

import html
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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

# https://core.telegram.org/bots/api#sendmessage: "Text of the message to be sent, 1-4096
# characters after entities parsing"; #sendphoto: "Photo caption ..., 0-1024 characters
# after entities parsing". (UTF-16 code units: #messageentity counts offsets in them.)
TEXT_LIMIT, CAPTION_LIMIT = 4096, 1024
# https://core.telegram.org/bots/api#sendphoto: "The photo must be at most 10 MB in size. The
# photo's width and height must not exceed 10000 in total. Width and height ratio must be at
# most 20."
PHOTO_LIMIT, PHOTO_SIDES, PHOTO_RATIO = 10 * 1024 * 1024, 10000, 20
TAG = regex.compile(r"<[^>]*>")
BOT_PATH = regex.compile(r"^/bot([^/]+)/([^/]+)$")
POST_METHODS = ("sendmessage", "sendphoto", "sendmediagroup")


@dataclass
class File:
    size: int
    mime: str
    width: int
    height: int


@dataclass
class State:
    files: dict[str, File] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)  # tokens revoked through @BotFather
    next_message: dict[int, int] = field(default_factory=dict)  # chat id → last message_id
    usernames: dict[int, str] = field(default_factory=dict)


def _state(request: Request) -> State:
    return sim(request).store.space("telegram", State)


def bot_id(token: str) -> int:
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else int(digest("telegram", token)[:10], 16) % 10**10


def ok(result: Any) -> Response:
    return json({"ok": True, "result": result})


def fail(code: int, description: str, **extra: Any) -> Response:
    return json({"ok": False, "error_code": code, "description": description, **extra}, code)


def units(text: str) -> int:
    """UTF-16 code units, the unit Telegram's limits and entity offsets use."""
    return len(text.encode("utf-16-le")) // 2


def visible(text: str, parse_mode: Any) -> str:
    """The text after entity parsing: only HTML markup is removed (Markdown is counted raw).
    https://core.telegram.org/bots/api#formatting-options"""
    if isinstance(parse_mode, str) and parse_mode.upper() == "HTML":
        return html.unescape(TAG.sub("", text))
    return text


Params = dict[str, Any]
Files = dict[str, tuple[bytes, str | None, str | None]]


async def _params(request: Request) -> tuple[Params, Files]:
    params: Params = dict(request.query_params)
    files: Files = {}
    if is_form(request):
        async with form(request) as data:
            for key, value in data.multi_items():
                part = await file_bytes(value)
                if part is None:
                    params[key] = value
                else:
                    files[key] = part
    elif request.method == "POST":
        body = await body_json(request)
        if isinstance(body, dict):
            params.update(body)
    return params, files


def _chat(request: Request, chat_id: Any) -> dict[str, Any] | None:
    """https://core.telegram.org/bots/api#sendmessage: chat_id is an Integer or a String,
    "@channelusername" for a channel."""
    state = _state(request)
    if isinstance(chat_id, str) and chat_id.startswith("@") and len(chat_id) > 1:
        username = chat_id[1:]
        number = -(10**12) - int(digest("telegram-chat", username.lower())[:9], 16) % 10**9
        state.usernames[number] = username
    else:
        try:
            number = int(chat_id)
        except (TypeError, ValueError):
            return None
    chat: dict[str, Any] = {"id": number, "type": "channel", "title": f"Channel {number}"}
    if number in state.usernames:
        chat["username"] = state.usernames[number]
        chat["title"] = state.usernames[number]
    return chat


def _message(request: Request, chat: dict[str, Any], **content: Any) -> dict[str, Any]:
    state = _state(request)
    message_id = state.next_message.get(chat["id"], 0) + 1
    state.next_message[chat["id"]] = message_id
    return {
        "message_id": message_id,
        "sender_chat": chat,
        "chat": chat,
        "date": int(time.time()),
        **content,
    }


def _log(
    request: Request, bot: int, chat: dict[str, Any], text: str, media: list[Media], message_id: int
) -> None:
    username = chat.get("username")
    sim(request).store.add(
        Post(
            platform="telegram",
            account=str(bot),
            target=str(username or chat["id"]),
            text=text,
            media=media,
            remote_id=str(message_id),
            received_at=received_at(request),
            url=f"https://t.me/{username}/{message_id}" if username else None,
        )
    )


def _photo(request: Request, value: Any, files: Files) -> tuple[str, File] | str:
    """(file_id, file) of an uploaded part, `attach://name`, a known file_id or a URL
    (https://core.telegram.org/bots/api#sending-files, #inputfile)."""
    state = _state(request)
    if isinstance(value, str) and value.startswith("attach://"):
        part = files.get(value[len("attach://") :])
    elif isinstance(value, str):
        if value in state.files:
            return value, state.files[value]
        if value.startswith(("http://", "https://")):  # Telegram would fetch it; we don't
            return _remember(state, File(0, "image/jpeg", 1, 1))
        return "Bad Request: wrong remote file identifier specified"
    else:
        part = None
    if part is None:
        return "Bad Request: there is no photo in the request"
    content = part[0]
    # The rule is the documented 10 MB (PHOTO_LIMIT); the descriptions are those the Bot API
    # answers (python-telegram-bot's and aiogram's issue trackers quote them).
    if len(content) > PHOTO_LIMIT:
        return "Bad Request: file is too big"
    mime, width, height = sniffing.sniff(content)
    if not mime.startswith("image/"):
        return "Bad Request: IMAGE_PROCESS_FAILED"
    if (
        width
        and height
        and (width + height > PHOTO_SIDES or max(width, height) > PHOTO_RATIO * min(width, height))
    ):
        return "Bad Request: PHOTO_INVALID_DIMENSIONS"
    return _remember(state, File(len(content), mime, width or 1, height or 1))


def _remember(state: State, file: File) -> tuple[str, File]:
    file_id = "AgAC" + digest("telegram-file", str(len(state.files)), str(time.time_ns()))[:40]
    state.files[file_id] = file
    return file_id, file


def _photo_sizes(file_id: str, file: File) -> list[dict[str, Any]]:
    return [
        {
            "file_id": file_id,
            "file_unique_id": file_id[4:20],
            "file_size": file.size,
            "width": file.width,
            "height": file.height,
        }
    ]


async def get_me(request: Request, bot: int, params: Params, files: Files) -> Response:
    """https://core.telegram.org/bots/api#getme: "A simple method for testing your bot's
    authentication token"; returns a User."""
    return ok(
        {
            "id": bot,
            "is_bot": True,
            "first_name": "Simulated bot",
            "username": f"sim{bot}_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
    )


async def send_message(request: Request, bot: int, params: Params, files: Files) -> Response:
    chat = _chat(request, params.get("chat_id"))
    if chat is None:
        return fail(400, "Bad Request: chat not found")
    text = params.get("text")
    if not isinstance(text, str) or not visible(text, params.get("parse_mode")).strip():
        return fail(400, "Bad Request: message text is empty")
    if units(visible(text, params.get("parse_mode"))) > TEXT_LIMIT:  # 1-4096: see TEXT_LIMIT
        return fail(400, "Bad Request: message is too long")
    message = _message(request, chat, text=visible(text, params.get("parse_mode")))
    _log(request, bot, chat, message["text"], [], message["message_id"])
    return ok(message)


def _caption(params: Params) -> str | Response:
    caption = params.get("caption") or ""
    if not isinstance(caption, str):
        return fail(400, "Bad Request: can't parse caption")
    caption = visible(caption, params.get("parse_mode"))
    if units(caption) > CAPTION_LIMIT:  # 0-1024: see CAPTION_LIMIT
        return fail(400, "Bad Request: message caption is too long")
    return caption


async def send_photo(request: Request, bot: int, params: Params, files: Files) -> Response:
    chat = _chat(request, params.get("chat_id"))
    if chat is None:
        return fail(400, "Bad Request: chat not found")
    caption = _caption(params)
    if isinstance(caption, Response):
        return caption
    photo = _photo(request, "attach://photo" if "photo" in files else params.get("photo"), files)
    if isinstance(photo, str):
        return fail(400, photo)
    file_id, file = photo
    content: dict[str, Any] = {"photo": _photo_sizes(file_id, file)}
    if caption:
        content["caption"] = caption
    message = _message(request, chat, **content)
    _log(
        request, bot, chat, caption, [Media(size=file.size, mime=file.mime)], message["message_id"]
    )
    return ok(message)


async def send_media_group(request: Request, bot: int, params: Params, files: Files) -> Response:
    chat = _chat(request, params.get("chat_id"))
    if chat is None:
        return fail(400, "Bad Request: chat not found")
    items = params.get("media")
    if isinstance(items, str):
        try:
            items = orjson.loads(items)
        except orjson.JSONDecodeError:
            return fail(400, "Bad Request: can't parse media JSON object")
    # https://core.telegram.org/bots/api#sendmediagroup: "must include 2-10 items".
    if not isinstance(items, list) or not 2 <= len(items) <= 10:
        return fail(400, "Bad Request: media group must include 2-10 items")
    prepared = []
    for item in items:
        if not isinstance(item, dict) or item.get("type") != "photo":
            return fail(400, "Bad Request: the simulator's media groups take photos only")
        caption = _caption(item)
        if isinstance(caption, Response):
            return caption
        photo = _photo(request, item.get("media"), files)
        if isinstance(photo, str):
            return fail(400, photo)
        prepared.append((caption, *photo))
    group = str(sim(request).store.snowflake())
    messages = []
    for caption, file_id, file in prepared:
        content: dict[str, Any] = {"media_group_id": group, "photo": _photo_sizes(file_id, file)}
        if caption:
            content["caption"] = caption
        messages.append(_message(request, chat, **content))
    text = next((c for c, _, _ in prepared if c), "")
    _log(
        request,
        bot,
        chat,
        text,
        [Media(size=f.size, mime=f.mime) for _, _, f in prepared],
        messages[0]["message_id"],
    )
    return ok(messages)


Handler = Callable[[Request, int, Params, Files], Awaitable[Response]]
METHODS: dict[str, Handler] = {
    "getme": get_me,
    "sendmessage": send_message,
    "sendphoto": send_photo,
    "sendmediagroup": send_media_group,
}


async def bot_method(request: Request) -> Response:
    token = request.path_params["token"]
    # A token that is not (or no longer) a bot's: 401 Unauthorized, as api.telegram.org
    # answers (python-telegram-bot raises InvalidToken on it: telegram/request/_baserequest.py).
    if unusable(token) or token in _state(request).revoked:
        return fail(401, "Unauthorized")
    handler = METHODS.get(request.path_params["method"].lower())
    if handler is None:
        return fail(404, "Not Found")
    params, files = await _params(request)
    return await handler(request, bot_id(token), params, files)


async def revoke(request: Request) -> Response:
    """`POST /_sim/telegram/revoke {"token": T}`: what @BotFather's /revoke does to T."""
    body = await body_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("token"), str):
        return json({"error": 'the body must be {"token": "..."}'}, 400)
    _state(request).revoked.add(body["token"])
    return json({"ok": True})


routes = [
    Route("/bot{token}/{method}", bot_method, methods=["GET", "POST"]),
    Route("/_sim/telegram/revoke", revoke, methods=["POST"]),
]


def _account_of(scope: Scope) -> str | None:
    match = BOT_PATH.match(scope["path"])
    return str(bot_id(match.group(1))) if match else None


# https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this: past the
# limits, 429; https://core.telegram.org/bots/api#responseparameters: `retry_after`, "the
# number of seconds left to wait before the request can be repeated".
def _rate_limited(limit: RateLimit, reset_at: float) -> Response:
    wait = retry_after_s(reset_at)
    return fail(429, f"Too Many Requests: retry after {wait}", parameters={"retry_after": wait})


PLATFORM = Platform(
    name="telegram",
    owns=lambda path: BOT_PATH.match(path) is not None,
    is_post=lambda method, path: bool(
        (m := BOT_PATH.match(path)) and m.group(2).lower() in POST_METHODS
    ),
    account_of=_account_of,
    error=lambda status: fail(
        status,
        {
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }.get(status, "Error"),
    ),
    rate_limited=_rate_limited,
)
