"""The dry run: every queue item with the exact payload its platform would receive.

Pure: no network, no database, no files written."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from .platforms import registry
from .queue import QueueItem
from .storm import Storm
from .timezones import iso_utc


def rendered(storm: Storm, items: Iterable[QueueItem]) -> Iterator[tuple[QueueItem, Any]]:
    """Each item with its payload filled in, and the Payload (length, limit, problems)."""
    accounts = {a.name: a for a in storm.accounts}
    for item in items:
        plugin = registry.get(item.platform)
        payload = plugin.render(item, accounts[item.account])
        yield replace(item, payload={"requests": payload.requests}), payload


def item_record(item: QueueItem, payload: Any) -> dict[str, Any]:
    """One preview line as JSON: what, when, where, and the exact requests."""
    return {
        "id": item.id,
        "kind": item.kind,
        "fire_at": iso_utc(item.fire_at),
        "platform": item.platform,
        "account": item.account,
        "lang": item.lang,
        "text": item.text,
        "length": payload.length,
        "limit": payload.limit,
        "media": [{"path": m.path, "alt": m.alt} for m in item.media],
        "source": item.source,
        "problems": payload.problems,
        "payload": payload.requests,
    }
