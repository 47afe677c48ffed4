"""Mastodon 4.3 REST API, the part a poster uses (https://docs.joinmastodon.org/methods/).

Media answer 202 with `url: null` until processed (GET 206, then 200) and cannot be attached
before; an `Idempotency-Key` seen from the same account within the hour returns the first
status instead of creating another. Rules and entities are in `mastodon_entities.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import media as sniffing
from ._web import body_json, file_bytes, form, form_list, is_form, json, received_at, sim
from .faults import Platform, RateLimit
from .mastodon_entities import (
    DESCRIPTION_LIMIT,
    IMAGE_LIMIT,
    IMAGE_TYPES,
    MAX_CHARACTERS,
    MAX_MEDIA,
    OTHER_TYPES,
    VERSION,
    VISIBILITIES,
    Account,
    Attachment,
    Status,
    account_json,
    configuration,
    iso,
    media_json,
    status_json,
    text_length,
)
from .state import Media, Post, bearer, digest, scope_header, unusable

if TYPE_CHECKING:
    from starlette.types import Scope


@dataclass
class State:
    media: dict[str, Attachment] = field(default_factory=dict)
    statuses: dict[str, Status] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)


def _state(request: Request) -> State:
    return sim(request).store.space("mastodon", State)


def account_for(token: str) -> Account:
    h = digest("mastodon", token)
    return Account(id=str(int(h[:13], 16)), username=f"user{h[:8]}")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json({"error": message}, status, headers)


def _token(request: Request) -> str | None:
    return bearer(request.headers) or request.query_params.get("access_token")


def _auth(request: Request) -> Account | Response:
    token = _token(request)
    if token is None:
        return _error(401, "This method requires an authenticated user")
    if unusable(token):
        return _error(401, "The access token is invalid")
    return account_for(token)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def instance_v1(request: Request) -> Response:
    base = _base(request)
    return json(
        {
            "uri": request.url.netloc,
            "title": "stormer simulator",
            "short_description": "",
            "description": "",
            "email": "",
            "version": VERSION,
            "urls": {},
            "languages": ["en"],
            "registrations": False,
            "approval_required": False,
            "invites_enabled": False,
            "stats": {
                "user_count": 0,
                "status_count": len(_state(request).statuses),
                "domain_count": 0,
            },
            "thumbnail": f"{base}/thumbnail.png",
            "contact_account": None,
            "rules": [],
            "configuration": configuration(),
        }
    )


async def instance_v2(request: Request) -> Response:
    return json(
        {
            "domain": request.url.netloc,
            "title": "stormer simulator",
            "version": VERSION,
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "",
            "usage": {"users": {"active_month": 0}},
            "thumbnail": {"url": None},
            "languages": ["en"],
            "configuration": {"urls": {}, **configuration()},
            "registrations": {"enabled": False, "approval_required": False, "message": None},
            "api_versions": {"mastodon": 2},
            "contact": {"email": "", "account": None},
            "rules": [],
        }
    )


async def verify_credentials(request: Request) -> Response:
    account = _auth(request)
    if isinstance(account, Response):
        return account
    count = sum(1 for s in _state(request).statuses.values() if s.account.id == account.id)
    body = account_json(_base(request), account, count)
    body["source"] = {
        "privacy": "public",
        "sensitive": False,
        "language": None,
        "note": "",
        "fields": [],
        "follow_requests_count": 0,
    }
    return json(body)


async def upload_media(request: Request) -> Response:
    account = _auth(request)
    if isinstance(account, Response):
        return account
    if not is_form(request):
        return _error(422, "Validation failed: File can't be blank")
    async with form(request) as data:
        upload = await file_bytes(data.get("file"))
        description = data.get("description")
    if upload is None:
        return _error(422, "Validation failed: File can't be blank")
    content, _, declared = upload
    mime, width, height = sniffing.sniff(content)
    if mime == "application/octet-stream" and declared in OTHER_TYPES:
        mime = declared
    if mime not in IMAGE_TYPES and mime not in OTHER_TYPES:
        return _error(422, "Validation failed: File content type is invalid, File is invalid")
    if mime in IMAGE_TYPES and len(content) > IMAGE_LIMIT:
        return _error(422, "Validation failed: File file size must be less than 16 MB")
    if isinstance(description, str) and len(description) > DESCRIPTION_LIMIT:
        return _error(
            422,
            f"Validation failed: Description is too long (maximum is "
            f"{DESCRIPTION_LIMIT} characters)",
        )
    store = sim(request).store
    delay = sim(request).config.media_processing_s
    now = time.time()
    item = Attachment(
        id=str(store.snowflake()),
        owner=account.id,
        size=len(content),
        mime=mime,
        description=description if isinstance(description, str) else None,
        ready_at=now + delay,
        width=width,
        height=height,
    )
    _state(request).media[item.id] = item
    # A v2 upload that finished at once answers 200; one still processing answers 202.
    legacy = request.url.path.startswith("/api/v1/")
    if legacy:
        item.ready_at = now
    return json(media_json(_base(request), item, now), 200 if legacy or delay <= 0 else 202)


def _own_media(request: Request, account: Account) -> Attachment | Response:
    item = _state(request).media.get(request.path_params["id"])
    if item is None or item.owner != account.id:
        return _error(404, "Record not found")
    return item


async def get_media(request: Request) -> Response:
    account = _auth(request)
    if isinstance(account, Response):
        return account
    item = _own_media(request, account)
    if isinstance(item, Response):
        return item
    now = time.time()
    return json(media_json(_base(request), item, now), 200 if now >= item.ready_at else 206)


async def update_media(request: Request) -> Response:
    account = _auth(request)
    if isinstance(account, Response):
        return account
    item = _own_media(request, account)
    if isinstance(item, Response):
        return item
    params = await _params(request)
    if isinstance(params.get("description"), str):
        item.description = params["description"]
    return json(media_json(_base(request), item, time.time()))


async def _params(request: Request) -> dict[str, Any]:
    """Status parameters from JSON or a form (media_ids[] as a list either way)."""
    if is_form(request):
        async with form(request) as data:
            params: dict[str, Any] = {k: v for k, v in data.items() if isinstance(v, str)}
            params["media_ids"] = form_list(data, "media_ids")
        return params
    body = await body_json(request)
    params = dict(body) if isinstance(body, dict) else {}
    params.update({k: v for k, v in request.query_params.items() if k not in params})
    return params


def _truthy(value: Any) -> bool:
    return value in (True, "true", "True", "1", 1, "on")


async def create_status(request: Request) -> Response:
    account = _auth(request)
    if isinstance(account, Response):
        return account
    arrived = received_at(request)
    params = await _params(request)
    state = _state(request)
    config = sim(request).config
    now = time.time()

    key = request.headers.get("idempotency-key")
    if key:
        known = state.idempotency.get((account.id, key))
        if known and now - known[1] < config.mastodon_idempotency_s:
            return json(status_json(_base(request), state.statuses[known[0]]))

    if params.get("scheduled_at"):
        return _error(422, "Validation failed: the simulator does not schedule statuses")
    text = params.get("status") or ""
    spoiler = params.get("spoiler_text") or ""
    media_ids = params.get("media_ids") or []
    if not isinstance(text, str) or not isinstance(spoiler, str) or not isinstance(media_ids, list):
        return _error(422, "Validation failed: invalid parameters")
    media_ids = [str(m) for m in media_ids]
    if not text.strip() and not media_ids:
        return _error(422, "Validation failed: Text can't be blank")
    if len(media_ids) > MAX_MEDIA:
        return _error(422, f"Validation failed: Cannot attach more than {MAX_MEDIA} files")
    attached: list[Attachment] = []
    for media_id in media_ids:
        item = state.media.get(media_id)
        if item is None or item.owner != account.id or item.status_id is not None:
            return _error(
                422,
                f"Validation failed: Media attachment {media_id} could not be "
                "found or is already attached",
            )
        attached.append(item)
    if any(now < item.ready_at for item in attached):
        return _error(
            422, "Cannot attach files that have not finished processing. Try again in a moment!"
        )
    if text_length(spoiler + text) > MAX_CHARACTERS:
        return _error(422, f"Validation failed: Text character limit of {MAX_CHARACTERS} exceeded")
    visibility = params.get("visibility") or "public"
    if visibility not in VISIBILITIES:
        return _error(422, "Validation failed: Visibility is not included in the list")

    store = sim(request).store
    status = Status(
        id=str(store.snowflake()),
        account=account,
        text=text,
        spoiler_text=spoiler,
        visibility=visibility,
        language=params.get("language") or None,
        sensitive=_truthy(params.get("sensitive")),
        created_at=arrived,
        media=attached,
    )
    for item in attached:
        item.status_id = status.id
    state.statuses[status.id] = status
    if key:
        state.idempotency[(account.id, key)] = (status.id, now)
    body = status_json(_base(request), status)
    store.add(
        Post(
            platform="mastodon",
            account=account.username,
            text=text,
            remote_id=status.id,
            received_at=arrived,
            url=body["url"],
            media=[Media(size=m.size, mime=m.mime, alt=m.description) for m in attached],
        )
    )
    return json(body)


async def get_status(request: Request) -> Response:
    account = _auth(request)
    if isinstance(account, Response):
        return account
    status = _state(request).statuses.get(request.path_params["id"])
    if status is None:
        return _error(404, "Record not found")
    return json(status_json(_base(request), status))


async def account_statuses(request: Request) -> Response:
    account = _auth(request)
    if isinstance(account, Response):
        return account
    try:
        limit = min(40, max(1, int(request.query_params.get("limit", "20"))))
    except ValueError:
        limit = 20
    owner = request.path_params["id"]
    mine = [s for s in _state(request).statuses.values() if s.account.id == owner]
    mine.sort(key=lambda s: int(s.id), reverse=True)
    return json([status_json(_base(request), s) for s in mine[:limit]])


async def not_found(request: Request) -> Response:
    return _error(404, "Not Found")


def _both(path: str, endpoint: Any, methods: list[str] | None = None) -> list[Route]:
    # Rails routes ignore a trailing slash, and Mastodon.py asks for /api/v1/instance/.
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


ANY = ["GET", "POST", "PUT", "DELETE", "PATCH"]
routes = [
    *_both("/api/v1/instance", instance_v1),
    *_both("/api/v2/instance", instance_v2),
    *_both("/api/v1/accounts/verify_credentials", verify_credentials),
    *_both("/api/v1/accounts/{id}/statuses", account_statuses),
    *_both("/api/v2/media", upload_media, ["POST"]),
    *_both("/api/v1/media", upload_media, ["POST"]),
    *_both("/api/v1/media/{id}", get_media, ["GET"]),
    *_both("/api/v1/media/{id}", update_media, ["PUT"]),
    *_both("/api/v1/statuses", create_status, ["POST"]),
    *_both("/api/v1/statuses/{id}", get_status, ["GET"]),
    Route("/api/v1/{rest:path}", not_found, methods=ANY),
    Route("/api/v2/{rest:path}", not_found, methods=ANY),
]


def _owns(path: str) -> bool:
    return path.startswith(("/api/v1/", "/api/v2/"))  # Discord's /api/…/webhooks/ is matched first


def _account_of(scope: Scope) -> str | None:
    value = scope_header(scope, b"authorization")
    return value.partition(" ")[2] or None if value else None


def _rate_limited(limit: RateLimit, reset_at: float) -> Response:
    return _error(429, "Too many requests", _limit_headers(limit, 0, reset_at))


def _limit_headers(limit: RateLimit, remaining: int, reset_at: float) -> dict[str, str]:
    reset = datetime.fromtimestamp(reset_at, UTC)
    return {
        "X-RateLimit-Limit": str(limit.limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": iso(reset),
    }


PLATFORM = Platform(
    name="mastodon",
    owns=_owns,
    is_post=lambda method, path: method == "POST" and path.rstrip("/") == "/api/v1/statuses",
    account_of=_account_of,
    error=lambda status: _error(
        status,
        {
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }.get(status, "Error"),
    ),
    rate_limited=_rate_limited,
    limit_headers=_limit_headers,
)
