"""`app.bsky.feed.searchPosts` (lexicons/app/bsky/feed/searchPosts.json;
https://docs.bsky.app/docs/api/app-bsky-feed-search-posts), over the posts of every repository
this simulator holds, as the AppView answers it through a PDS.

Signed in only: Bluesky turned unauthenticated post search off in January 2025
(https://github.com/bluesky-social/atproto/issues/3423).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._web import json
from .bluesky_records import POST, Repos

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

# "limit: integer, minimum 1, maximum 100, default 25" (the lexicon)
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
TAG_FACET = "app.bsky.richtext.facet#tag"


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _tags(record: dict[str, Any]) -> set[str]:
    """A post's hashtags: "based on rich text facet or tag field" (the lexicon, `tag`)."""
    found = {str(t).casefold() for t in record.get("tags") or [] if isinstance(t, str)}
    for facet in record.get("facets") or []:
        for feature in (facet or {}).get("features") or [] if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and feature.get("$type") == TAG_FACET:
                found.add(str(feature.get("tag", "")).casefold())
    return found


def _matches(record: dict[str, Any], terms: list[str], tags: list[str]) -> bool:
    """Every `tag` (AND: "Multiple tags can be specified, with 'AND' matching") and every
    word of `q` (a `#word` matches the hashtag, any other word the text)."""
    have = _tags(record)
    text = str(record.get("text", "")).casefold()
    if any(t.casefold().lstrip("#") not in have for t in tags):
        return False
    return all(
        (term[1:].casefold() in have) if term.startswith("#") else (term.casefold() in text)
        for term in terms
    )


def search(request: Request, repos: Repos, handles: dict[str, str]) -> Response:
    """One page of results, newest `sortAt` first; the cursor is an opaque offset."""
    query = request.query_params
    q = query.get("q")
    if not q:
        # `q` is required (the lexicon); the XRPC server's answer to a missing parameter.
        return json(
            {"error": "InvalidRequest", "message": 'Params must have the property "q"'}, 400
        )
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
        offset = int(query.get("cursor", "0"))
    except ValueError:
        return json(
            {"error": "InvalidRequest", "message": "limit and cursor must be integers"}, 400
        )
    if not 1 <= limit <= MAX_LIMIT:
        return json(
            {"error": "InvalidRequest", "message": f"limit must be between 1 and {MAX_LIMIT}"}, 400
        )
    since, until = _instant(query.get("since")), _instant(query.get("until"))
    hits = []
    for did, collections in repos.records.items():
        for rkey, entry in collections.get(POST, {}).items():
            created = _instant(entry.value.get("createdAt"))
            indexed = entry.post.received_at if entry.post else created
            if created is None or indexed is None:
                continue
            # since/until compare `sortAt`, "which may not match 'createdAt'": the earlier of
            # createdAt and indexedAt (lexicons/app/bsky/feed/searchPosts.json, `since`).
            sort_at = min(created, indexed)
            if since is not None and sort_at < since:  # "after … (inclusive)"
                continue
            if until is not None and sort_at >= until:  # "before … (not inclusive)"
                continue
            if _matches(entry.value, q.split(), query.getlist("tag")):
                hits.append((sort_at, did, rkey, entry, indexed))
    hits.sort(key=lambda h: (h[0], h[1], h[2]), reverse=True)
    chosen = hits[offset : offset + limit]
    body: dict[str, Any] = {
        "posts": [
            {
                "uri": f"at://{did}/{POST}/{rkey}",
                "cid": entry.cid,
                "author": {"did": did, "handle": handles.get(did, "handle.invalid")},
                "record": entry.value,
                "replyCount": 0,
                "repostCount": 0,
                "likeCount": 0,
                "indexedAt": indexed.isoformat().replace("+00:00", "Z"),
            }
            for _, did, rkey, entry, indexed in chosen
        ]
    }
    if offset + limit < len(hits):
        body["cursor"] = str(offset + limit)
    return json(body)
