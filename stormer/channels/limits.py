"""Limits a server publishes about itself, read once and kept per server in the storm's folder.

A platform whose servers publish their own limits implements `Platform.read_limits` (a
Mastodon instance's configuration, a Matrix homeserver's media config). `LimitsCache` reads
them through it at most once per server and process, and keeps them in
`.stormer/limits.json` in the storm's folder with the time they were read, so that `check
--online`, staging and `preview` (which opens no connection) all measure a post against the
same numbers and can say where they come from. `plugin.with_limits(limits)` is the plugin
measuring against them; `live_problems` is everything in an item over them.

Why a day's freshness: the limits are a server's configuration, changed by its admin (a new
`MAX_TOOT_CHARS`, an image limit) perhaps a few times a year, never per request; a day keeps
`check --online` the day before and staging minutes before T on the same numbers without
asking every instance again for each of thousands of items, and anything older is read
again before it is trusted at staging.

The file holds no secret (limits are public), but it is the storm's private working state:
created owner-only (0600, its folder 0700), like the alerts' markers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stormer.channels.base import LIVE_FIELDS, LiveLimits

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from stormer.channels.base import Connection, Platform
    from stormer.queue import QueueItem
    from stormer.storm import Account

log = logging.getLogger("stormer.channels")

FILE_NAME = "limits.json"
FRESH_FOR = timedelta(days=1)  # see the module's docstring


def _now() -> datetime:
    return datetime.now(UTC)


class LimitsCache:
    """The limits of each server, by platform and base URL, in `folder` / limits.json."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME
        self._reading: dict[str, asyncio.Task[LiveLimits | None]] = {}

    @staticmethod
    def key(plugin: Platform, account: Account) -> str:
        return f"{plugin.name} {plugin.base_url(account)}"

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def cached(
        self, plugin: Platform, account: Account, *, fresh_for: timedelta | None = FRESH_FOR
    ) -> LiveLimits | None:
        """The limits kept for `account`'s server, if read within `fresh_for` (None: any
        age; what a preview shows, with the date it was read)."""
        entry = self._load().get(self.key(plugin, account))
        limits = _from_json(entry)
        if limits is None or limits.read_at is None:
            return None
        if fresh_for is not None and _now() - limits.read_at > fresh_for:
            return None
        return limits

    def for_accounts(self, storm_accounts: list[Account]) -> dict[str, LiveLimits]:
        """Each account's kept limits, whatever their age, by account name (for preview)."""
        from stormer.channels import registry

        known = registry.installed()
        found = {}
        for account in storm_accounts:
            if account.platform in known:
                limits = self.cached(registry.get(account.platform), account, fresh_for=None)
                if limits is not None:
                    found[account.name] = limits
        return found

    async def read(
        self, plugin: Platform, conn: Connection, *, refresh: bool = False
    ) -> LiveLimits | None:
        """The limits of `conn`'s server: kept ones read within a day (unless `refresh`),
        else read through `plugin.read_limits` once per server in this process, however
        many items ask, and kept. Raises what `read_limits` raises (the next call tries
        again)."""
        if not refresh:
            kept = self.cached(plugin, conn.account)
            if kept is not None:
                return kept
        key = self.key(plugin, conn.account)
        task = self._reading.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._reading[key] = asyncio.ensure_future(self._read(plugin, conn, key))
        return await asyncio.shield(task)

    async def _read(self, plugin: Platform, conn: Connection, key: str) -> LiveLimits | None:
        limits = await plugin.read_limits(conn)
        if limits is None:
            return None
        limits = replace(limits, read_at=_now())
        self._store(key, limits)
        return limits

    def _store(self, key: str, limits: LiveLimits) -> None:
        """Merge one server's limits into the file, written whole and replaced atomically
        (another worker may read it at the same moment), owner-only."""
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = self._load()
        data[key] = _to_json(limits)
        temporary = self.path.with_name(f".{FILE_NAME}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
        os.replace(temporary, self.path)


def _to_json(limits: LiveLimits) -> dict[str, Any]:
    data = asdict(limits)
    data["read_at"] = limits.read_at.isoformat() if limits.read_at else None
    return data


def _from_json(entry: Any) -> LiveLimits | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
        return None
    try:
        read_at = datetime.fromisoformat(entry["read_at"]) if entry.get("read_at") else None
    except (TypeError, ValueError):
        return None
    numbers = {
        name: entry[name]
        for name in LIVE_FIELDS
        if isinstance(entry.get(name), int) and not isinstance(entry.get(name), bool)
    }
    return LiveLimits(source=entry["source"], read_at=read_at, **numbers)


def live_problems(
    plugin: Platform, item: QueueItem, account: Account, size_of: Callable[[str], int] | None
) -> list[str]:
    """What in `item` is over the limits `plugin` measures against (`with_limits`): its text,
    and — where its server published them — an image's bytes (`size_of(path)`) or alt text.
    Each says both numbers and where the limit comes from."""
    problems = list(plugin.render(item, account).problems)
    live = plugin.live
    if live is None:
        return problems
    for media in item.media:
        if live.alt_text_limit is not None and len(media.alt) > live.alt_text_limit:
            problems.append(
                f"the alt text of {media.path} is {len(media.alt)} characters > "
                f"{live.alt_text_limit} (this server's limit, {live.origin()})"
            )
        if live.image_bytes is not None and size_of is not None:
            size = size_of(media.path)
            if size > live.image_bytes:
                problems.append(
                    f"{media.path} is {size} bytes > {live.image_bytes} "
                    f"(this server's limit, {live.origin()})"
                )
    return problems
