"""Whether a burst began: the line between "nothing left" and "the outcome is unknown".

A worker marks a burst's items `sending` half a second before T (`claims.record_attempt`,
naming the burst), so that at T it only sends. If it dies in between, nothing was sent; but
the items look in flight, and on a platform that cannot be asked afterwards (Telegram,
Discord) an item in flight can only end `unconfirmed`. So the burst's own row decides:

- `begin`, by the worker, at T, just before its first request leaves: the burst began. A
  crash from here on leaves its items' outcomes unknown, to be reconciled.
- `settle`, by a worker recovering `sending` items whose lease ran out: each burst that never
  began is written as abandoned (`abandoned_by`), and its items are sent again.

Both write the same primary key, so exactly one of them wins, on SQLite (one writer at a
time) and on PostgreSQL (the second insert waits for the first to commit, then conflicts).
A worker whose burst was abandoned while it stalled finds out at `begin` and sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from stormer.outbox.db import chunks
from stormer.outbox.models import Burst, require_aware

_b = cast(Table, Burst.__table__)


def begin(*, engine: Engine, burst: str, storm: str, worker: str, now: datetime) -> bool:
    """Record that `worker`'s `burst` begins sending now; False if another worker already
    recovered its items (then send nothing: they are someone else's now)."""
    require_aware(now)
    try:
        with engine.begin() as conn:
            conn.execute(
                _b.insert().values(burst_id=burst, storm=storm, worker=worker, started_at=now)
            )
    except IntegrityError:
        return False
    return True


def settle(conn: Connection, owners: Mapping[str, str], *, storm: str, worker: str) -> set[str]:
    """Of the bursts `owners` (burst → the worker that marked it), return those that began;
    write every other one as abandoned by `worker`, in `conn`'s transaction."""
    if not owners:
        return set()
    conn.execute(
        _insert_ignoring_existing(conn, _b),
        [
            {"burst_id": b, "storm": storm, "worker": owner, "abandoned_by": worker}
            for b, owner in owners.items()
        ],
    )
    began: set[str] = set()
    for chunk in chunks(sorted(owners)):
        began.update(
            conn.execute(
                select(_b.c.burst_id).where(_b.c.burst_id.in_(chunk), _b.c.started_at.is_not(None))
            ).scalars()
        )
    return began


def _insert_ignoring_existing(conn: Connection, table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING, in the dialect of `conn` (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=["burst_id"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=["burst_id"])
