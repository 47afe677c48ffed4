"""A hashtag's public posts on one Mastodon instance: its tag timeline, newest first, read
back page by page until the window's start (https://docs.joinmastodon.org/methods/timelines/#tag).

An instance sees only what federated to it: the posts of its own users, and those of users
elsewhere whom someone on it follows (or that reached it through a relay). Several instances
are read and their posts merged by URI, which is the same everywhere a post travels.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from stormer.channels.http import Request
from stormer.channels.search import Pages, SearchUnavailable, SeenPost, Send, Wait, page, utc

# "limit: Maximum number of results to return. Defaults to 20 statuses. Max 40 statuses."
# (same page)
PAGE_SIZE = 40
# Pagination is by the Link header: rel="next" holds the older page's address (max_id)
# (https://docs.joinmastodon.org/api/guidelines/#pagination).
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def tag_url(base: str, hashtag: str) -> str:
    """The first page of `hashtag`'s timeline on the instance at `base` (no `#`)."""
    tag = quote(hashtag.lstrip("#"), safe="")
    return f"{base.rstrip('/')}/api/v1/timelines/tag/{tag}?limit={PAGE_SIZE}"


async def tag_timeline(
    send: Send,
    base: str,
    hashtag: str,
    since: datetime,
    until: datetime,
    *,
    wait: Wait,
    token: str | None = None,
) -> Pages:
    """Every post of the tag timeline at `base` created in [since, until), a page at a time.

    Public, with no token, unless the instance has turned its public preview off: "Requires
    app token + read:statuses if the instance has disabled public preview" (same page), when
    `token` is used if there is one."""
    host = urlsplit(base).hostname or base
    url: str | None = tag_url(base, hashtag)
    headers: dict[str, str] = {}
    while url is not None:
        r = await page(send, Request("GET", url, headers), platform="mastodon", wait=wait)
        if r.status in (401, 403, 422) and token and not headers:
            headers = {"Authorization": f"Bearer {token}"}
            continue
        if r.status != 200 or not isinstance(r.json(), list):
            raise SearchUnavailable(_refusal(host, r.status, r.json(), with_token=bool(headers)))
        seen = [p for s in r.json() if isinstance(s, dict) and (p := _seen(s, host))]
        yield [p for p in seen if since <= p.created_at < until]
        oldest = min((p.created_at for p in seen), default=None)
        if oldest is None or oldest < since:
            return  # newest first: everything further is older than the window
        found = _NEXT.search(r.headers.get("link", ""))
        url = found.group(1) if found else None


def _seen(status: dict[str, Any], host: str) -> SeenPost | None:
    """A Status entity (https://docs.joinmastodon.org/entities/Status/) as a SeenPost."""
    account = status.get("account") if isinstance(status.get("account"), dict) else {}
    acct = str((account or {}).get("acct") or "")
    try:
        created = utc(str(status.get("created_at")))
    except ValueError:
        return None
    return SeenPost(
        platform="mastodon",
        uri=str(status.get("uri") or status.get("url") or status.get("id")),
        url=status.get("url") or status.get("uri"),
        # `acct` is "user" for the instance's own users and "user@domain" for others.
        author=f"@{acct}" if "@" in acct else f"@{acct}@{host}",
        created_at=created,
        lang=status.get("language"),
        reshares=int(status.get("reblogs_count") or 0),
    )


def _refusal(host: str, status: int, body: Any, *, with_token: bool) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    why = f"HTTP {status}" + (f": {error}" if error else "")
    if status in (401, 403, 422):
        hint = (
            "this account's token lacks the read:statuses scope"
            if with_token
            else "it shows its tag timelines only to signed-in users, and no account of "
            "the storm is on it"
        )
        return f"{host} refused its tag timeline ({why}): {hint}"
    return f"{host} did not give its tag timeline ({why})"
