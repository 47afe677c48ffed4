"""The dry run: every queue item with the exact payload its platform would receive.

Pure: no network, no database, no files written."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from stormer.channels import registry
from stormer.channels.base import LiveLimits, Platform
from stormer.queue import Payload, QueueItem
from stormer.storm import Storm
from stormer.timezones import iso_utc


def rendered(
    storm: Storm,
    items: Iterable[QueueItem],
    *,
    show_contacts: bool = False,
    limits: Mapping[str, LiveLimits] | None = None,
) -> Iterator[tuple[QueueItem, Payload]]:
    """Each item with its rendered Payload (requests, length, limit and where it comes from,
    problems). `limits`: by account name, those its server published, as kept by `check
    --online` (the caller reads them: nothing here opens a file). A reminder's recipient is
    shown by its channel kind only, unless `show_contacts`."""
    from stormer.reminders import contact_index, render_reminder

    accounts = {a.name: a for a in storm.accounts}
    contacts = contact_index(storm) if show_contacts else None
    plugins: dict[str, Platform] = {}  # by account: its platform, measuring by its limits
    for item in items:
        if item.kind == "reminder":
            yield item, render_reminder(storm, item, contacts=contacts)
            continue
        plugin = plugins.get(item.account)
        if plugin is None:
            live = (limits or {}).get(item.account)
            plugin = plugins[item.account] = registry.get(item.platform).with_limits(live)
        yield item, plugin.render(item, accounts[item.account])


def with_payloads(
    storm: Storm,
    items: Sequence[QueueItem],
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[QueueItem]:
    """The items with their payloads filled in, as the outbox stores them. A reminder keeps
    the payload it was planned with (subject, HTML, the hash of its contact).
    `progress(step, done, total)` is told how many are rendered so far."""
    out = []
    for n, (item, payload) in enumerate(rendered(storm, items)):
        if progress is not None and n % 500 == 0:
            progress("rendering payloads", n, len(items))
        out.append(
            item
            if item.kind == "reminder"
            else replace(item, payload={"requests": payload.requests})
        )
    if progress is not None:
        progress("rendering payloads", len(items), len(items))
    return out


def item_record(item: QueueItem, payload: Payload) -> dict[str, Any]:
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
        "limit_source": payload.limit_source,
        "media": [{"path": m.path, "alt": m.alt} for m in item.media],
        "source": item.source,
        "problems": payload.problems,
        "payload": payload.requests,
    }


def preview_lines(
    name: str,
    total: int,
    shown: Iterable[tuple[QueueItem, Payload]],
    *,
    width: int = 100,
    show_contacts: bool = False,
) -> list[str]:
    """The dry run for people: one aligned line per item, the text cut to fit `width`. A
    reminder names its channel only; with `show_contacts` (payloads rendered with the
    contacts, `rendered(show_contacts=True)`), also the address it goes to."""
    rows = []
    sources: dict[tuple[str, int, str], None] = {}  # each limit used, and where it came from
    for item, payload in shown:
        if payload.limit_source is not None:
            sources[(registry.get(item.platform).title, payload.limit, payload.limit_source)] = None
        length = f"{payload.length}/{payload.limit}"
        if payload.length > payload.limit:
            length += " TOO LONG"
        media = f"{len(item.media)} img" if item.media else ""
        where = registry.channel_class(item.kind).label(item.platform, item.payload)
        if show_contacts and item.kind == "reminder":
            where += f" to {payload.requests[0]['to']}"
        rows.append(
            (
                item.fire_at,
                where,
                item.account,
                item.lang,
                length,
                media,
                " ".join(item.text.split()),
            )
        )
    one_day = len({r[0].date() for r in rows}) <= 1
    title = f"{name}: {total} queued item(s)"
    if rows and one_day:
        # With --limit the day is only that of the items shown: the others may be on another.
        part = "" if len(rows) == total else f"; the {len(rows)} shown"
        title += f"{part} on {rows[0][0]:%Y-%m-%d}, times in UTC"
    when = "%H:%M:%S" if one_day else "%Y-%m-%d %H:%M:%S"
    cells = [[f"{r[0]:{when}}", *r[1:6]] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(6)] if cells else []
    lines = [title]
    lines += [f"  {platform}: limit {limit} ({source})" for platform, limit, source in sources]
    for c, r in zip(cells, rows, strict=True):
        head = "  ".join(cell.ljust(w) for cell, w in zip(c, widths, strict=True))
        room = max(width - len(head) - 2, 12)
        text = r[6] if len(r[6]) <= room else r[6][: room - 1] + "…"
        lines.append(f"{head}  {text}")
    return lines
