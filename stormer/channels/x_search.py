"""A hashtag's public posts on X: recent search, `GET /2/tweets/search/recent`
(https://docs.x.com/x-api/posts/search-recent-posts). It covers the last 7 days, and only
some access levels include it: an account whose access does not is reported as not measured,
with X's own reason, never as "no posts".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from stormer.channels.http import Request
from stormer.channels.search import Pages, SearchUnavailable, SeenPost, Send, Wait, page, utc

# "Recent search: the last 7 days" (https://docs.x.com/x-api/posts/search/introduction)
REACH = timedelta(days=7)
# end_time "must be a minimum of 10 seconds prior to the request time" (search-recent-posts)
END_TIME_LAG = timedelta(seconds=10)
PAGE_SIZE = 100  # max_results: 10 to 100 (same page)


def _stamp(instant: datetime) -> str:
    # "YYYY-MM-DDTHH:mm:ssZ (ISO 8601/RFC 3339)" (same page)
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def recent_search(
    send: Send,
    base: str,
    hashtag: str,
    since: datetime,
    until: datetime,
    *,
    wait: Wait,
    now: datetime,
) -> Pages:
    """Every post carrying `hashtag` created in [since, until), a page at a time; `send`
    signs each request with the account's credentials."""
    if since < now - REACH:
        raise SearchUnavailable(
            f"X's recent search reaches back 7 days only, and the window starts {_stamp(since)}"
        )
    until = min(until, now - END_TIME_LAG)
    params = {
        "query": f"#{hashtag.lstrip('#')}",
        "start_time": _stamp(since),
        "end_time": _stamp(until),
        "max_results": str(PAGE_SIZE),
        "tweet.fields": "created_at,lang,public_metrics,author_id",
        "expansions": "author_id",
        "user.fields": "username",
    }
    next_token: str | None = None
    while True:
        query = params | ({"next_token": next_token} if next_token else {})
        url = f"{base.rstrip('/')}/2/tweets/search/recent?{urlencode(query)}"
        r = await page(send, Request("GET", url), platform="x", wait=wait)
        body = r.json()
        if r.status != 200 or not isinstance(body, dict):
            raise SearchUnavailable(_refusal(r.status, body))
        users = {
            str(u.get("id")): str(u.get("username"))
            for u in (body.get("includes") or {}).get("users") or []
            if isinstance(u, dict)
        }
        found = [
            s for t in body.get("data") or [] if isinstance(t, dict) and (s := _seen(t, users))
        ]
        yield [s for s in found if since <= s.created_at < until]
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        next_token = (meta or {}).get("next_token")
        if not found or not isinstance(next_token, str):
            return


def _seen(tweet: dict[str, Any], users: dict[str, str]) -> SeenPost | None:
    try:
        created = utc(str(tweet.get("created_at")))
    except ValueError:
        return None
    username = users.get(str(tweet.get("author_id")), "i")
    metrics = tweet.get("public_metrics") if isinstance(tweet.get("public_metrics"), dict) else {}
    return SeenPost(
        platform="x",
        uri=str(tweet.get("id")),
        url=f"https://x.com/{username}/status/{tweet.get('id')}",
        author=f"@{username}",
        created_at=created,
        lang=tweet.get("lang"),
        reshares=int((metrics or {}).get("retweet_count") or 0),
    )


def _refusal(status: int, body: Any) -> str:
    """X's reason, in its words: a 403 `client-not-enrolled` or a 402 means the access level
    of the app does not include search (https://docs.x.com/x-api/getting-started/pricing)."""
    detail = ""
    if isinstance(body, dict):
        named = [str(body[k]) for k in ("title", "reason") if body.get(k)]
        detail = ", ".join(named) or str(body.get("detail") or "")
    if status in (402, 403):
        return (
            f"X refused recent search (HTTP {status}: {detail or 'forbidden'}): this app's "
            "access level does not include it"
        )
    if status == 401:
        return "X refused the account's credentials (HTTP 401): run `stormer check --online`"
    return f"X did not answer the search (HTTP {status}{': ' + detail if detail else ''})"
