"""Reading a hashtag's public posts back, for `stormer impact`: what a platform's search
returned (`SeenPost`), pages fetched with the platform's rate limits honoured, and why a
platform cannot be searched (`SearchUnavailable`).

Each platform's own search lives with its facts (`mastodon_tags`, `bluesky_search`,
`x_search`); a platform without one says why in `Platform.no_hashtag_search`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from stormer.channels.http import Request, Response, classify
from stormer.errors import RateLimited, StormerError

# A page of results; the search functions yield one at a time, so that progress can be shown
# and a long search stopped without losing what was read.
Pages = AsyncIterator[list["SeenPost"]]
Send = Callable[[Request], Awaitable[Response]]
Wait = Callable[[float, str], Awaitable[None]]  # seconds, and why (shown to the organizer)

# A rate-limited page is asked for again after the wait the platform named, this many times
# at most: a search that is refused for longer is stopped with what it has, and says so.
RATE_LIMIT_RETRIES = 5


class SearchUnavailable(StormerError):
    """The platform (or this access to it) offers no search of public posts: the reason is
    for the organizer, and the platform is reported as not measured."""


@dataclass(frozen=True, slots=True)
class SeenPost:
    """One public post under the hashtag, as a platform's search returned it. `author` is a
    public handle, shown only when the organizer asks (`--show-authors`); the text is not
    kept: counts need none of it."""

    platform: str
    uri: str  # the platform's global id (ActivityPub URI, at:// URI, post id): deduplicates
    url: str | None  # where a person can read it
    author: str
    created_at: datetime  # UTC
    lang: str | None = None
    reshares: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"created_at": self.created_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeenPost:
        return cls(**(data | {"created_at": datetime.fromisoformat(data["created_at"])}))


async def page(send: Send, request: Request, *, platform: str, wait: Wait) -> Response:
    """One page of results: a 429 waits as long as the platform says, then asks again."""
    for _ in range(RATE_LIMIT_RETRIES):
        response = await send(request)
        if response.status != 429:
            return response
        limited = classify(response, platform=platform, mutating=False)
        assert isinstance(limited, RateLimited)
        await wait(limited.retry_after, f"{platform} rate limit")
    raise SearchUnavailable(
        f"{platform}: still rate limited after {RATE_LIMIT_RETRIES} waits; "
        "run `stormer impact` again later to read the rest"
    )


def utc(text: str) -> datetime:
    """An ISO 8601 instant as the platforms write them (`Z` or an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
