"""Mastodon 4.4 REST API, the part a poster uses (https://docs.joinmastodon.org/methods/).

Media answer 202 with `url: null` until processed (GET 206, then 200) and cannot be attached
before; an `Idempotency-Key` seen from the same account within the hour returns the first
status instead of creating another. Each endpoint needs the OAuth scope its documentation
names; the limits are the instance's (`SimConfig.mastodon_*`, served at /api/v2/instance).
Rules and entities are in `mastodon_entities.py`; apps, OAuth, tokens and scopes in
`mastodon_oauth.py`; scheduled statuses in `mastodon_scheduled.py`; CORS in
`mastodon_cors.py`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import mastodon_authorize as authorizing
from . import mastodon_oauth as oauth
from . import mastodon_scheduled as scheduling
from . import mastodon_tags as tags
from . import media as sniffing
from ._web import body_json, file_bytes, form, form_list, is_form, json, received_at, sim
from .faults import Platform, RateLimit
from .mastodon_entities import (
    IMAGE_TYPES,
    MAX_MEDIA,
    OTHER_TYPES,
    VISIBILITIES,
    Account,
    Attachment,
    State,
    Status,
    account_json,
    human_size,
    instance_v1_json,
    instance_v2_json,
    iso,
    mastodon_state,
    media_json,
    record_status,
    status_json,
    text_length,
)
from .mastodon_oauth import api_error as _error
from .mastodon_oauth import authenticate as _auth
from .state import scope_header

if TYPE_CHECKING:
    from starlette.types import Scope


def _state(request: Request) -> State:
    return mastodon_state(sim(request))


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def instance_v1(request: Request) -> Response:
    """GET /api/v1/instance (deprecated since 4.0; https://docs.joinmastodon.org/entities/V1_Instance/)."""
    statuses = len(_state(request).statuses)
    return json(instance_v1_json(_base(request), request.url.netloc, sim(request).config, statuses))


async def instance_v2(request: Request) -> Response:
    """GET /api/v2/instance, public (https://docs.joinmastodon.org/methods/instance/#v2)."""
    return json(instance_v2_json(request.url.netloc, sim(request).config))


async def verify_credentials(request: Request) -> Response:
    # "User token + `profile` or `read:accounts`":
    # https://docs.joinmastodon.org/methods/accounts/#verify_credentials
    account = _auth(request, "profile", "read:accounts")
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
    # "User token + `write:media`": https://docs.joinmastodon.org/methods/media/#v2
    account = _auth(request, "write:media")
    if isinstance(account, Response):
        return account
    config = sim(request).config
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
        # https://docs.joinmastodon.org/methods/media/#422-unprocessable-entity
        return _error(422, "Validation failed: File content type is invalid, File is invalid")
    limit = config.mastodon_image_size_limit
    if mime in IMAGE_TYPES and len(content) > limit:
        # The instance's image_size_limit ("the maximum size of any uploaded image, in
        # bytes": https://docs.joinmastodon.org/entities/Instance/#image_size_limit); the
        # text is Paperclip's size validation on MediaAttachment#file (validates_attachment_size
        # in app/models/media_attachment.rb) with Rails' number_to_human_size.
        return _error(
            422, f"Validation failed: File file size must be less than {human_size(limit)}"
        )
    alt_limit = config.mastodon_description_limit
    if isinstance(description, str) and len(description) > alt_limit:
        # description_limit, "the maximum size of a description, in characters"
        # (https://docs.joinmastodon.org/entities/Instance/#description_limit); the text is
        # Rails' length validation on MediaAttachment#description.
        return _error(
            422,
            f"Validation failed: Description is too long (maximum is {alt_limit} characters)",
        )
    store = sim(request).store
    delay = config.media_processing_s
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
    # A v2 upload that finished at once answers 200; one still processing answers 202
    # (https://docs.joinmastodon.org/methods/media/#v2); v1 always waits (deprecated).
    legacy = request.url.path.startswith("/api/v1/")
    if legacy:
        item.ready_at = now
    return json(media_json(_base(request), item, now), 200 if legacy or delay <= 0 else 202)


def _own_media(request: Request, account: Account) -> Attachment | Response:
    item = _state(request).media.get(request.path_params["id"])
    if item is None or item.owner != account.id:
        # https://docs.joinmastodon.org/methods/media/#get (404: "Record not found")
        return _error(404, "Record not found")
    return item


async def get_media(request: Request) -> Response:
    # "User token + `write:media`"; 206 while processing, 200 once done:
    # https://docs.joinmastodon.org/methods/media/#get
    account = _auth(request, "write:media")
    if isinstance(account, Response):
        return account
    item = _own_media(request, account)
    if isinstance(item, Response):
        return item
    now = time.time()
    return json(media_json(_base(request), item, now), 200 if now >= item.ready_at else 206)


async def update_media(request: Request) -> Response:
    # "User token + `write:media`": https://docs.joinmastodon.org/methods/media/#update
    account = _auth(request, "write:media")
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
    # "User token + `write:statuses`": https://docs.joinmastodon.org/methods/statuses/#create
    account = _auth(request, "write:statuses")
    if isinstance(account, Response):
        return account
    arrived = received_at(request)
    params = await _params(request)
    state = _state(request)
    config = sim(request).config
    now = time.time()

    # "Idempotency-Key: … Keys expire after 1 hour":
    # https://docs.joinmastodon.org/methods/statuses/#headers (and /api/guidelines/#idempotency)
    key = request.headers.get("idempotency-key")
    if key:
        known = state.idempotency.get((account.id, key))
        if known and now - known[1] < config.mastodon_idempotency_s:
            return scheduling.repeated(request, state, known[0])

    text = params.get("status") or ""
    spoiler = params.get("spoiler_text") or ""
    media_ids = params.get("media_ids") or []
    if not isinstance(text, str) or not isinstance(spoiler, str) or not isinstance(media_ids, list):
        return _error(422, "Validation failed: invalid parameters")
    media_ids = [str(m) for m in media_ids]
    if not text.strip() and not media_ids:
        # `status` is required unless media_ids is given; the 422 body the docs show:
        # https://docs.joinmastodon.org/methods/statuses/#create
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
        # Media still processing cannot be attached (the 422 Mastodon answers then:
        # tuskyapp/Tusky#2442; https://docs.joinmastodon.org/methods/media/#v2 says to wait).
        return _error(
            422, "Cannot attach files that have not finished processing. Try again in a moment!"
        )
    # The instance's max_characters (https://docs.joinmastodon.org/entities/Instance/#max_characters)
    # counts the content warning with the text (StatusLengthValidator).
    most = config.mastodon_max_characters
    if text_length(spoiler + text, config.mastodon_characters_reserved_per_url) > most:
        return _error(422, f"Validation failed: Text character limit of {most} exceeded")
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
    when = scheduling.when(params.get("scheduled_at"), sim(request).clock.now())
    if isinstance(when, Response):
        return when
    if when is not None:
        return scheduling.schedule(request, status, when, key)
    body = record_status(sim(request), _base(request), status)
    if key:
        state.idempotency[(account.id, key)] = (status.id, now)
    return json(body)


async def get_status(request: Request) -> Response:
    # A public status; the token needs no particular scope for it:
    # https://docs.joinmastodon.org/methods/statuses/#get
    account = _auth(request)
    if isinstance(account, Response):
        return account
    status = _state(request).statuses.get(request.path_params["id"])
    if status is None:
        return _error(404, "Record not found")
    return json(status_json(_base(request), status))


async def account_statuses(request: Request) -> Response:
    # Public statuses; limit: default 20, max 40:
    # https://docs.joinmastodon.org/methods/accounts/#statuses
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


async def tag_timeline(request: Request) -> Response:
    """GET /api/v1/timelines/tag/:hashtag: public, with no token ("OAuth: Public",
    https://docs.joinmastodon.org/methods/timelines/#tag), unless the instance turned public
    preview off ("Requires app token + read:statuses if the instance has disabled public
    preview"; `SimConfig.mastodon_tags_need_token`: 422, as the page's example shows)."""
    if sim(request).config.mastodon_tags_need_token:
        account = _auth(request, "read", "read:statuses")
        if isinstance(account, Response):
            if account.status_code == 401:
                return _error(422, "This method requires an authenticated user")
            return account
    body, headers = tags.page(request, _state(request).statuses.values(), _base(request))
    return json(body, 200, headers)


async def not_found(request: Request) -> Response:
    return _error(404, "Not Found")


def _both(path: str, endpoint: Any, methods: list[str] | None = None) -> list[Route]:
    # Rails routes ignore a trailing slash, and Mastodon.py asks for /api/v1/instance/.
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


ANY = ["GET", "POST", "PUT", "DELETE", "PATCH"]
routes = [
    *oauth.routes,
    *authorizing.routes,
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
    *_both("/api/v1/timelines/tag/{hashtag}", tag_timeline, ["GET"]),
    *scheduling.routes,
    Route("/api/v1/{rest:path}", not_found, methods=ANY),
    Route("/api/v2/{rest:path}", not_found, methods=ANY),
]


def _owns(path: str) -> bool:
    return path.startswith(("/api/v1/", "/api/v2/"))  # Discord's /api/…/webhooks/ is matched first


def _account_of(scope: Scope) -> str | None:
    """The rate-limit key: the token, or for a request without one the client's address
    ("Per IP … 300 requests per 5 minutes", https://docs.joinmastodon.org/api/rate-limits/)."""
    value = scope_header(scope, b"authorization")
    if value:
        return value.partition(" ")[2] or None
    client = scope.get("client")
    return f"ip:{client[0]}" if client else None


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
