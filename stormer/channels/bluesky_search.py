"""A hashtag's public posts on Bluesky: `app.bsky.feed.searchPosts`
(https://docs.bsky.app/docs/api/app-bsky-feed-search-posts; lexicon
lexicons/app/bsky/feed/searchPosts.json), asked through the account's own PDS, which passes
`app.bsky.*` calls on to the AppView with the account's session.

Signed in, because Bluesky turned unauthenticated post search off in January 2025 ("we have
temporarily disabled all un-authenticated full-text post search API queries",
https://github.com/bluesky-social/atproto/issues/3423) and never served a cursor without a
session (https://github.com/bluesky-social/bsky-docs/issues/296). The search index covers the
whole network the AppView sees, unlike a Mastodon instance's timeline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from stormer.channels import bluesky_session as session
from stormer.channels.base import Connection
from stormer.channels.http import Request, Response
from stormer.channels.search import Pages, SearchUnavailable, SeenPost, Wait, page, utc
from stormer.timezones import iso_utc

SEARCH_POSTS = "app.bsky.feed.searchPosts"
# "limit: integer, minimum 1, maximum 100, default 25" (the lexicon)
PAGE_SIZE = 100


async def search_posts(
    conn: Connection, entryway: str, hashtag: str, since: datetime, until: datetime, *, wait: Wait
) -> Pages:
    """Every post carrying `hashtag` created in [since, until), a page at a time."""
    tag = hashtag.lstrip("#")
    await session.ensure(conn, entryway)
    params = {
        # "q: Search query string … Lucene query syntax is recommended" (required), and
        # "tag: Filter to posts with the given tag (hashtag), based on rich text facet or
        # tag field. Do not include the hash (#) prefix."
        "q": f"#{tag}",
        "tag": tag,
        "sort": "latest",
        # "since: … after the indicated datetime (inclusive)"; "until: … before the
        # indicated datetime (not inclusive)". Both compare `sortAt`, which may differ from
        # `createdAt`: the window is applied to `createdAt` again below.
        "since": iso_utc(since),
        "until": iso_utc(until),
        "limit": str(PAGE_SIZE),
    }

    async def send(request: Request) -> Response:
        """`request` with the session's token, refreshed once if it expired meanwhile."""
        return await session.call(
            conn,
            entryway,
            lambda token: Request(
                request.method, request.url, {"Authorization": f"Bearer {token}"}
            ),
        )

    cursor: str | None = None
    while True:
        url = session.xrpc_url(
            session.pds_url(conn, entryway),
            SEARCH_POSTS,
            **(params | ({"cursor": cursor} if cursor else {})),
        )
        r = await page(send, Request("GET", url), platform="bluesky", wait=wait)
        body = r.json()
        if r.status != 200 or not isinstance(body, dict):
            raise SearchUnavailable(_refusal(r))
        posts = [p for p in body.get("posts") or [] if isinstance(p, dict)]
        yield [s for p in posts if (s := _seen(p)) and since <= s.created_at < until]
        cursor = body.get("cursor") if isinstance(body.get("cursor"), str) else None
        if not posts or not cursor:
            return


def _seen(post: dict[str, Any]) -> SeenPost | None:
    """A postView (lexicons/app/bsky/feed/defs.json) as a SeenPost."""
    record = post.get("record") if isinstance(post.get("record"), dict) else {}
    author = post.get("author") if isinstance(post.get("author"), dict) else {}
    uri = post.get("uri")
    try:
        created = utc(str((record or {}).get("createdAt") or post.get("indexedAt")))
    except ValueError:
        return None
    if not isinstance(uri, str):
        return None
    handle = str((author or {}).get("handle") or (author or {}).get("did") or "?")
    langs = (record or {}).get("langs")
    return SeenPost(
        platform="bluesky",
        uri=uri,
        url=f"https://bsky.app/profile/{quote(handle)}/post/{uri.rsplit('/', 1)[-1]}",
        author=f"@{handle}",
        created_at=created,
        lang=langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None,
        reshares=int(post.get("repostCount") or 0),
    )


def _refusal(r: Response) -> str:
    name, message = session.xrpc_error(r)
    why = f"HTTP {r.status}" + (f" {name}" if name else "") + (f": {message}" if message else "")
    if r.status in (401, 403):
        return (
            f"Bluesky refused the search ({why}): check the account with `stormer check --online`"
        )
    return f"Bluesky did not answer the search ({why})"
