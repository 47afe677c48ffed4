"""Mastodon's hashtag timeline, `GET /api/v1/timelines/tag/:hashtag`
(https://docs.joinmastodon.org/methods/timelines/#tag): the instance's public statuses that
carry the tag, newest first, a page at a time with the Link header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .mastodon_entities import Status, status_json

if TYPE_CHECKING:
    from starlette.requests import Request

# A hashtag in a status: `#` after a start, space or punctuation other than `=`, `/`, `)`,
# then word characters with at least one letter (mastodon/mastodon app/models/tag.rb,
# HASHTAG_RE: "#" not preceded by [=/)\p{Alnum}], and a name with an alpha character).
HASHTAG = re.compile(r"(?<![=/)\w])#(\w*[^\W\d]\w*)")
# "limit: Maximum number of results to return. Defaults to 20 statuses. Max 40 statuses."
DEFAULT_LIMIT, MAX_LIMIT = 20, 40


def normalized(name: str) -> str:
    """Tags match whatever their case or Unicode form (#Gaza is #gaza: Mastodon keeps one Tag
    per name, compared case-insensitively after NFKC; app/lib/hashtag_normalizer.rb)."""
    return unicodedata.normalize("NFKC", name).casefold()


def carries(status: Status, tag: str) -> bool:
    wanted = normalized(tag)
    return any(normalized(m.group(1)) == wanted for m in HASHTAG.finditer(status.text))


def page(
    request: Request, statuses: Iterable[Status], base: str
) -> tuple[list[dict[str, object]], dict[str, str]]:
    """One page of the tag timeline and its Link header. Only public statuses appear: the
    tag feed selects `with_public_visibility` (app/models/tag_feed.rb)."""
    tag = request.path_params["hashtag"]
    query = request.query_params
    try:
        limit = min(MAX_LIMIT, max(1, int(query.get("limit", DEFAULT_LIMIT))))
    except ValueError:
        limit = DEFAULT_LIMIT
    found = [s for s in statuses if s.visibility == "public" and carries(s, tag)]
    found.sort(key=lambda s: int(s.id), reverse=True)
    # Pagination parameters (https://docs.joinmastodon.org/api/guidelines/#pagination):
    # max_id: older than; since_id: newer than (the newest page); min_id: newer than, the
    # page right after it (the oldest first, returned newest first).
    if "max_id" in query:
        found = [s for s in found if int(s.id) < _int(query["max_id"])]
    if "since_id" in query:
        found = [s for s in found if int(s.id) > _int(query["since_id"])]
    if "min_id" in query:
        found = [s for s in found if int(s.id) > _int(query["min_id"])][-limit:]
    chosen = found[:limit]
    headers: dict[str, str] = {}
    if chosen:
        here = f"{base}/api/v1/timelines/tag/{tag}"
        headers["Link"] = (
            f'<{here}?limit={limit}&max_id={chosen[-1].id}>; rel="next", '
            f'<{here}?limit={limit}&min_id={chosen[0].id}>; rel="prev"'
        )
    return [status_json(base, s) for s in chosen], headers


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0
