"""Reading and writing the outbox: the planned items of a storm, upserted idempotently.

Functions take a keyword-only `session` and never commit: the caller owns the transaction, so
a schedule is applied entirely or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from stormer.outbox.db import chunks
from stormer.outbox.models import EDITABLE, REPLANNABLE, Outbox, State
from stormer.queue import QueueItem

_table = cast(Table, Outbox.__table__)  # Core statements: bulk, no per-row ORM objects


@dataclass
class ScheduleResult:
    """What `schedule` did, as lists of item ids."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # plan changed, not yet sent: rewritten
    unchanged: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # no longer planned, never sent
    kept_sent: list[str] = field(default_factory=list)  # plan changed or dropped, too late
    restored: list[str] = field(default_factory=list)  # cancelled before, planned again
    too_late: list[str] = field(default_factory=list)  # new, but their time has passed: not added


def schedule(
    items: Iterable[QueueItem],
    *,
    session: Session,
    storm: str,
    now: datetime,
    progress: Callable[[str, int, int], None] | None = None,
) -> ScheduleResult:
    """Make the outbox of `storm` match the plan `items`; running it twice changes nothing.

    New items are added as `pending`, unless their time has already passed at `now` (a
    participant who joins late gets only the reminders still ahead; they are reported in
    `too_late`). An item whose content changed is rewritten (and put back
    to `pending`, its attempts kept) only while it is `pending`, `staged` or `failed`. Unsent
    items missing from the plan become `cancelled` (never deleted); a cancelled item planned
    again is restored to `pending`. Items claimed, sending, sent or finished are never touched:
    if the plan changed or dropped them, they are reported in `kept_sent`.

    Every write is conditional on the row's state at that moment, so a row that a dispatcher
    claims meanwhile is left alone (and reported in `kept_sent`). Does not commit.
    `progress(step, done, total)` is told how many new rows are written so far.

    Raises:
        ValueError: two items share an id, or a datetime is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be tz-aware")
    planned: dict[str, tuple[QueueItem, str]] = {}  # id → (item, content hash)
    for item in items:
        if item.id in planned:
            raise ValueError(f"the plan has two items with id {item.id}")
        if item.fire_at.tzinfo is None:
            raise ValueError(f"item {item.id} has a naive fire_at")
        planned[item.id] = (item, item.content_hash())

    existing: dict[str, tuple[str, str]] = {
        row.id: (row.content_hash, row.state)
        for row in session.execute(
            select(_table.c.id, _table.c.content_hash, _table.c.state).where(
                _table.c.storm == storm
            )
        )
    }

    result = ScheduleResult()
    rewrite: list[str] = []  # to update or restore, told apart by their old state
    for item_id, (item, new_hash) in planned.items():
        if item_id not in existing:
            (result.too_late if item.fire_at <= now else result.added).append(item_id)
            continue
        old_hash, state = existing[item_id]
        if state == State.CANCELLED or (state in EDITABLE and old_hash != new_hash):
            rewrite.append(item_id)
        elif old_hash == new_hash:
            result.unchanged.append(item_id)
        else:
            result.kept_sent.append(item_id)
    dropped = [i for i in existing if i not in planned]

    written = 0
    for chunk in chunks(result.added):
        if progress is not None:
            progress("writing the outbox", written, len(result.added))
        session.execute(
            insert(_table),
            [_new_row(*planned[i], storm=storm, now=now) for i in chunk],
        )
        written += len(chunk)
    if progress is not None and written:
        progress("writing the outbox", written, written)

    for chunk in chunks(rewrite):
        landed = _update_if_state_in(
            REPLANNABLE,
            session,
            [
                # Whatever was staged (media ids, blobs) belongs to the old content: drop it.
                _plan_columns(*planned[i])
                | {
                    "b_id": i,
                    "state": State.PENDING,
                    "updated_at": now,
                    "staged_data": None,
                    "staged_at": None,
                }
                for i in chunk
            ],
        )
        for i in chunk:
            if landed.get(i) != (State.PENDING, planned[i][1]):
                result.kept_sent.append(i)  # a dispatcher claimed it meanwhile
            elif existing[i][1] == State.CANCELLED:
                result.restored.append(i)
            else:
                result.updated.append(i)

    # Already cancelled rows stay as they are; settled ones are too late to take back.
    result.kept_sent += [i for i in dropped if existing[i][1] not in REPLANNABLE]
    for chunk in chunks([i for i in dropped if existing[i][1] in EDITABLE]):
        landed = _update_if_state_in(
            EDITABLE,
            session,
            [{"b_id": i, "state": State.CANCELLED, "updated_at": now} for i in chunk],
        )
        for i in chunk:
            (
                result.cancelled if landed.get(i, ("",))[0] == State.CANCELLED else result.kept_sent
            ).append(i)
    return result


def _update_if_state_in(
    states: Sequence[State], session: Session, rows: Sequence[dict[str, Any]]
) -> dict[str, tuple[str, str]]:
    """Update each row (by `b_id`) if its state is still one of `states`.

    Returns what each row holds now, as {id: (state, content_hash)}. The condition is checked
    by the database at write time: a row a dispatcher claimed since we read it stays as it is.
    """
    # One statement, many parameter sets: its SET clause is every column named in them. By
    # primary key, each row on its own: with a long `id IN (...)` plus a state condition,
    # SQLite's planner (no statistics) walks the state index instead, ~5x slower.
    stmt = update(_table).where(
        _table.c.id == bindparam("b_id"),
        or_(*(_table.c.state == s for s in states)),  # IN (...) can't executemany
    )
    session.execute(stmt, rows)
    # Executemany cannot say which rows matched: read back what each one holds now.
    return {
        row.id: (row.state, row.content_hash)
        for row in session.execute(
            select(_table.c.id, _table.c.state, _table.c.content_hash).where(
                _table.c.id.in_([row["b_id"] for row in rows])
            )
        )
    }


def _plan_columns(item: QueueItem, content_hash: str) -> dict[str, Any]:
    """The columns that come from the plan: what a changed plan rewrites."""
    return {
        "kind": item.kind,
        "platform": item.platform,
        "account": item.account,
        "lang": item.lang,
        "source": item.source,
        "fire_at": item.fire_at,
        "text": item.text,
        "media": [m.as_dict() for m in item.media],
        "payload": item.payload,
        "content_hash": content_hash,
    }


def _new_row(item: QueueItem, content_hash: str, *, storm: str, now: datetime) -> dict[str, Any]:
    return _plan_columns(item, content_hash) | {
        "id": item.id,
        "seq": item.seq,  # identity, like the id: never rewritten
        "storm": storm,
        "state": State.PENDING,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def counts(*, session: Session, storm: str) -> dict[str, int]:
    """Number of items of `storm` in each state, every state present (in lifecycle order)."""
    # Not dict(result): a Result has keys() (its column names), so dict() would index it.
    found: dict[str, int] = {  # noqa: C416
        state: n
        for state, n in session.execute(
            select(_table.c.state, func.count())
            .where(_table.c.storm == storm)
            .group_by(_table.c.state)
        )
    }
    return {state: found.get(state, 0) for state in State}


def items(*, session: Session, storm: str) -> list[Outbox]:
    """Every item of `storm`, in firing order (ties broken by id, so the order is stable)."""
    return list(
        session.scalars(
            select(Outbox).where(Outbox.storm == storm).order_by(Outbox.fire_at, Outbox.id)
        )
    )
