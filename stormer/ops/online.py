"""`stormer check --online`: verify every account's credentials without posting, and measure
every post against the limits its server publishes (read now, and kept for staging and
preview: stormer.channels.limits)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from stormer.errors import AuthError, MissingCredential, PlatformError, Problem
from stormer.storm import CONFIG_NAME

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from stormer.channels.base import Connection, Platform
    from stormer.channels.limits import LimitsCache
    from stormer.storm import Account, Storm


async def verify_accounts(
    storm: Storm, *, http: httpx.AsyncClient | None = None, concurrency: int = 8
) -> list[Problem]:
    """One problem per account whose credentials are missing, rejected or unverifiable, and
    one per post over the limits its server published (once per server)."""
    from stormer.channels.limits import LimitsCache
    from stormer.dispatch.connect import client, connect

    gate = asyncio.Semaphore(concurrency)
    own = http is None
    http = http or client()
    cache = LimitsCache(storm.root / ".stormer")
    measured: set[str] = set()  # servers whose limits were measured against already

    async def one(account: Account) -> list[Problem]:
        async with gate:
            try:
                async with connect(storm, account, http) as (plugin, conn):
                    await plugin.verify(conn)
                    return await _within_live_limits(storm, plugin, conn, cache, measured)
            except MissingCredential as e:
                return [
                    Problem(
                        "error",
                        "credentials-missing",
                        CONFIG_NAME,
                        account.line,
                        str(e).removeprefix(f"{account.platform}: "),
                    )
                ]
            except AuthError as e:
                return [
                    Problem(
                        "error",
                        "credentials-rejected",
                        CONFIG_NAME,
                        account.line,
                        f"account {account.name!r}: {e}",
                    )
                ]
            except PlatformError as e:
                return [
                    Problem(
                        "warning",
                        "account-unverified",
                        CONFIG_NAME,
                        account.line,
                        f"account {account.name!r}: could not verify ({e})",
                    )
                ]

    try:
        results = await asyncio.gather(*(one(a) for a in storm.accounts))
    finally:
        if own:
            await http.aclose()
    return [p for found in results for p in found]


async def _within_live_limits(
    storm: Storm, plugin: Platform, conn: Connection, cache: LimitsCache, measured: set[str]
) -> list[Problem]:
    """Every post `conn.account` may carry against its server's published limits, read now
    (and kept); nothing if the server publishes none or was measured for another account."""
    from stormer.channels.limits import live_problems
    from stormer.plan import eligible, media_refs
    from stormer.queue import QueueItem

    account = conn.account
    key = cache.key(plugin, account)
    if key in measured:
        return []
    measured.add(key)
    try:
        limits = await cache.read(plugin, conn, refresh=True)
    except PlatformError as e:
        return [
            Problem(
                "warning",
                "limits-unread",
                CONFIG_NAME,
                account.line,
                f"account {account.name!r}: could not read the server's limits ({e}); "
                f"posts are measured against {plugin.title}'s defaults",
            )
        ]
    if limits is None:
        return []
    live = plugin.with_limits(limits)
    media_root = storm.root / "posts"
    problems = []
    for post in storm.posts:
        if not eligible(post, account) or storm.at is None:
            continue
        item = QueueItem(
            id=f"check-{post.file}",
            kind="post",
            fire_at=storm.at,
            platform=account.platform,
            account=account.name,
            lang=post.lang,
            text=post.text,
            media=media_refs(post),
            source=post.file,
        )
        for problem in live_problems(live, item, account, lambda p: _size(media_root, p)):
            problems.append(
                Problem(
                    "error",
                    "over-server-limit",
                    post.file,
                    post.text_line,
                    f"{plugin.title} at {plugin.base_url(account)} (account {account.name!r}): "
                    f"{problem}; shorten the post or restrict it with platforms = [...]",
                )
            )
    return problems


def _size(media_root: Path, path: str) -> int:
    try:
        return (media_root / path).stat().st_size
    except OSError:
        return 0  # a missing image is check's own error already
