"""X API v2, the part a poster uses (https://docs.x.com/x-api/posts/creation-of-a-post).

No idempotency: the same text from the same account again → 403 "duplicate content", which
is all a client gets after retrying a request that did land; read-back through
`GET /2/users/{id}/tweets` is the way to find out. The length is a simplified twitter-text v3
weighted count written here from its config (NFC first; code points in 0-4351, 8192-8205,
8208-8223, 8242-8247 weigh 1, others 2; each http(s) URL 23; an emoji sequence 2).
429s carry `x-rate-limit-*` and no Retry-After.
"""

from __future__ import annotations

import base64
import binascii
import time
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import regex
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import media as sniffing
from ._web import body_json, file_bytes, form, is_form, json, received_at, sim
from .faults import Platform, RateLimit
from .state import Media, Post, scope_header
from .x_auth import User, caller, token_of, user_for
from .x_auth import routes as auth_routes

if TYPE_CHECKING:
    from starlette.types import Scope

MAX_WEIGHT = 280
LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
URL = regex.compile(r"(?<![\w@/])https?://[^\s<>\"]+", regex.IGNORECASE)
CLUSTER = regex.compile(r"\X")
EMOJI_PART = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")
# https://docs.x.com/x-api/media/quickstart/media-upload-chunked ("Media constraints"): images
# up to 5 MB (GIFs 15 MB, videos 512 MB); a larger image is refused as an invalid request.
IMAGE_LIMIT = 5 * 1024 * 1024
CATEGORIES = (
    "tweet_image",
    "tweet_gif",
    "tweet_video",
    "dm_image",
    "dm_gif",
    "dm_video",
    "subtitles",
    "amplify_video",
)
INVALID = "https://api.twitter.com/2/problems/invalid-request"


def _char_weight(char: str) -> int:
    point = ord(char)
    return 1 if any(low <= point <= high for low, high in LIGHT) else 2


def _segment_weight(text: str) -> int:
    total = 0
    for cluster in CLUSTER.findall(text):
        if len(cluster) > 1 and EMOJI_PART.search(cluster):
            total += 2  # a whole emoji sequence (ZWJ, flags, keycaps, modifiers) counts as 2
        else:
            total += sum(_char_weight(c) for c in cluster)
    return total


def weighted_length(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    total, position = 0, 0
    for match in URL.finditer(text):
        link = match.group().rstrip(".,:;!?'\")]}")
        total += _segment_weight(text[position : match.start()]) + 23
        position = match.start() + len(link)
    return total + _segment_weight(text[position:])


@dataclass
class Upload:
    id: str
    owner: str
    size: int
    mime: str
    category: str
    alt: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class Tweet:
    id: str
    author: str
    text: str
    created_at: float
    media_ids: list[str]


@dataclass
class State:
    media: dict[str, Upload] = field(default_factory=dict)
    tweets: dict[str, Tweet] = field(default_factory=dict)
    recent_texts: dict[tuple[str, str], float] = field(default_factory=dict)


def _state(request: Request) -> State:
    return sim(request).store.space("x", State)


def _problem(
    status: int,
    title: str,
    detail: str,
    kind: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    return json(
        {**extra, "title": title, "detail": detail, "type": kind, "status": status}, status, headers
    )


def _invalid(parameter: str, message: str) -> Response:
    return json(
        {
            "errors": [{"parameters": {parameter: []}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": INVALID,
        },
        400,
    )


# The scopes each endpoint requires (each endpoint's reference page on docs.x.com, e.g.
# https://docs.x.com/x-api/posts/create-post: tweet.read tweet.write users.read;
# https://docs.x.com/x-api/media/media-upload: media.write).
READ = frozenset({"tweet.read", "users.read"})
WRITE = READ | {"tweet.write"}
MEDIA = frozenset({"media.write"})


async def _auth(request: Request, needs: frozenset[str] = READ) -> User | Response:
    """The caller (x_auth), or X's 401; a token without the endpoint's scopes gets X's 403
    (https://docs.x.com/x-api/fundamentals/response-codes-and-errors: 403, "the request is
    understood, but it has been refused or access is not allowed")."""
    found = await caller(request)
    if found is None:
        return _problem(401, "Unauthorized", "Unauthorized")
    if not needs <= found.scopes:
        return _problem(403, "Forbidden", "Forbidden")
    return found.user


async def me(request: Request) -> Response:
    user = await _auth(request)
    if isinstance(user, Response):
        return user
    return json({"data": {"id": user.id, "name": user.username, "username": user.username}})


async def upload(request: Request) -> Response:
    user = await _auth(request, MEDIA)
    if isinstance(user, Response):
        return user
    content: bytes | None = None
    category: Any = None
    if is_form(request):
        async with form(request) as data:
            part = await file_bytes(data.get("media"))
            category = data.get("media_category")
            if part is not None:
                content = part[0]
            elif isinstance(data.get("media"), str):  # base64 as a plain field
                content = _b64(str(data.get("media")))
    else:
        body = await body_json(request)
        if isinstance(body, dict):
            category = body.get("media_category")
            content = _b64(body.get("media"))
    if not content:
        return _invalid("media", "The `media` field is required.")
    if category not in CATEGORIES:
        return _invalid(
            "media_category", "The `media_category` field must be one of " + ", ".join(CATEGORIES)
        )
    mime, width, height = sniffing.sniff(content)
    if category.endswith("image") and (not mime.startswith("image/") or len(content) > IMAGE_LIMIT):
        return _invalid("media", "Unsupported or too large image (images up to 5 MB).")
    item = Upload(
        id=str(sim(request).store.snowflake()),
        owner=user.id,
        size=len(content),
        mime=mime,
        category=category,
        width=width,
        height=height,
    )
    _state(request).media[item.id] = item
    data_out: dict[str, Any] = {
        "id": item.id,
        "media_key": f"3_{item.id}",
        "size": item.size,
        "expires_after_secs": 86400,
    }
    if width and height:
        data_out["image"] = {"image_type": mime, "w": width, "h": height}
    return json({"data": data_out})


def _b64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


async def metadata(request: Request) -> Response:
    user = await _auth(request, MEDIA)
    if isinstance(user, Response):
        return user
    body = await body_json(request)
    item = _state(request).media.get(str(body.get("id"))) if isinstance(body, dict) else None
    if item is None or item.owner != user.id:
        return _invalid("id", "Your media ID is invalid.")
    try:
        alt = body["metadata"]["alt_text"]["text"]
    except (KeyError, TypeError):
        return _invalid("metadata", "metadata.alt_text.text is required.")
    if not isinstance(alt, str) or len(alt) > 1000:
        return _invalid("metadata", "Alt text must be a string of at most 1000 characters.")
    item.alt = alt
    return json({"data": {"id": item.id, "associated_metadata": {"alt_text": {"text": alt}}}})


def _tweet_json(tweet: Tweet, fields: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}
    if "created_at" in fields:
        out["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(tweet.created_at))
    if "author_id" in fields:
        out["author_id"] = tweet.author
    if "attachments" in fields and tweet.media_ids:
        out["attachments"] = {"media_keys": [f"3_{m}" for m in tweet.media_ids]}
    return out


async def create_tweet(request: Request) -> Response:
    user = await _auth(request, WRITE)
    if isinstance(user, Response):
        return user
    body = await body_json(request)
    if not isinstance(body, dict):
        return _invalid("body", "Requires a JSON body with at least text or media.")
    text = body.get("text", "")
    media_ids = (body.get("media") or {}).get("media_ids") or []
    if not isinstance(text, str) or not isinstance(media_ids, list):
        return _invalid("text", "text must be a string and media.media_ids a list.")
    if not text and not media_ids:
        return _invalid("text", "Requires a JSON body with at least text or media.")
    if weighted_length(text) > MAX_WEIGHT:
        return _invalid("text", "The text of your Tweet is too long.")
    state = _state(request)
    items = [state.media.get(str(m)) for m in media_ids]
    if len(items) > 4 or any(i is None or i.owner != user.id for i in items):
        return _invalid("media.media_ids", "Your media IDs are invalid.")
    now = time.time()
    key = (user.id, unicodedata.normalize("NFC", text))
    window = sim(request).config.x_duplicate_window_s
    if text and now - state.recent_texts.get(key, -window) < window:
        return _problem(
            403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
        )
    tweet = Tweet(
        id=str(sim(request).store.snowflake()),
        author=user.id,
        text=text,
        created_at=now,
        media_ids=[str(m) for m in media_ids],
    )
    state.tweets[tweet.id] = tweet
    if text:
        state.recent_texts[key] = now
    sim(request).store.add(
        Post(
            platform="x",
            account=user.username,
            text=text,
            remote_id=tweet.id,
            received_at=received_at(request),
            url=f"https://x.com/{user.username}/status/{tweet.id}",
            media=[Media(size=i.size, mime=i.mime, alt=i.alt) for i in items if i],
        )
    )
    return json({"data": _tweet_json(tweet, set())}, 201)


def _fields(request: Request) -> set[str]:
    return set(request.query_params.get("tweet.fields", "").split(","))


async def user_tweets(request: Request) -> Response:
    user = await _auth(request)
    if isinstance(user, Response):
        return user
    try:
        limit = int(request.query_params.get("max_results", "10"))
    except ValueError:
        limit = 0
    if not 5 <= limit <= 100:
        given = request.query_params.get("max_results")
        return _invalid(
            "max_results",
            f"The `max_results` query parameter value [{given}] is not between 5 and 100",
        )
    author = request.path_params["id"]
    tweets = sorted(
        (t for t in _state(request).tweets.values() if t.author == author),
        key=lambda t: int(t.id),
        reverse=True,
    )[:limit]
    if not tweets:
        return json({"meta": {"result_count": 0}})
    return json(
        {
            "data": [_tweet_json(t, _fields(request)) for t in tweets],
            "meta": {
                "result_count": len(tweets),
                "newest_id": tweets[0].id,
                "oldest_id": tweets[-1].id,
            },
        }
    )


async def get_tweet(request: Request) -> Response:
    user = await _auth(request)
    if isinstance(user, Response):
        return user
    tweet_id = request.path_params["id"]
    tweet = _state(request).tweets.get(tweet_id)
    if tweet is None:
        return json(
            {
                "errors": [
                    {
                        "value": tweet_id,
                        "detail": f"Could not find tweet with id: [{tweet_id}].",
                        "title": "Not Found Error",
                        "resource_type": "tweet",
                        "parameter": "id",
                        "resource_id": tweet_id,
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }
                ]
            }
        )
    return json({"data": _tweet_json(tweet, _fields(request))})


async def not_found(request: Request) -> Response:
    return _problem(404, "Not Found Error", "Sorry, that page does not exist.")


async def search_recent(request: Request) -> Response:
    """GET /2/tweets/search/recent, as X answers an app whose access level does not include
    search (the Free level: https://docs.x.com/x-api/getting-started/about-x-api, "access
    levels"): 403 with the `client-forbidden` problem, reason `client-not-enrolled`
    (https://docs.x.com/x-api/fundamentals/response-codes-and-errors)."""
    return json(
        {
            "title": "Client Forbidden",
            "type": "https://api.twitter.com/2/problems/client-forbidden",
            "reason": "client-not-enrolled",
            "required_enrollment": "Appropriate Level of API Access",
            "detail": "When authenticating requests to the Twitter API v2 endpoints, you must "
            "use keys and tokens from a Twitter developer App that is attached to a Project. "
            "You can create a project via the developer portal.",
        },
        403,
    )


routes = [
    *auth_routes,  # before the catch-all below
    Route("/2/users/me", me),
    Route("/2/users/{id}/tweets", user_tweets),
    Route("/2/media/upload", upload, methods=["POST"]),
    Route("/2/media/metadata", metadata, methods=["POST"]),
    Route("/2/tweets", create_tweet, methods=["POST"]),
    Route("/2/tweets/search/recent", search_recent),
    Route("/2/tweets/{id}", get_tweet),
    Route("/2/{rest:path}", not_found, methods=["GET", "POST", "PUT", "DELETE"]),
]


def _limit_headers(limit: RateLimit, remaining: int, reset_at: float) -> dict[str, str]:
    return {
        "x-rate-limit-limit": str(limit.limit),
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(int(reset_at)),
    }


def _account_of(scope: Scope) -> str | None:
    token = token_of(scope_header(scope, b"authorization"))
    return user_for(token).id if token else None


PLATFORM = Platform(
    name="x",
    owns=lambda path: path.startswith("/2/"),
    is_post=lambda method, path: method == "POST" and path == "/2/tweets",
    account_of=_account_of,
    error=lambda status: _problem(
        status,
        {
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }.get(status, "Error"),
        "Simulated failure",
    ),
    rate_limited=lambda limit, reset_at: _problem(
        429, "Too Many Requests", "Too Many Requests", headers=_limit_headers(limit, 0, reset_at)
    ),
    limit_headers=_limit_headers,
)
