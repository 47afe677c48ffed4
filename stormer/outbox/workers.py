"""The workers' registry: which dispatcher processes run for a storm, and whether they live.

A worker that is not running looks exactly like a worker with nothing to do, so each one
registers, heartbeats on every pass (saying how far ahead it has staged), and records a clean
stop. `live_workers` is what `status`, `doctor` and the watchdog count as alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Engine

from stormer.outbox.models import Worker, require_aware
from stormer.settings import STALE_AFTER

_w = cast(Table, Worker.__table__)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    worker_id: str
    storm: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    staged_through: datetime | None
    stopped_at: datetime | None


# --- workers -----------------------------------------------------------------------------------


def register_worker(
    *, engine: Engine, worker: str, storm: str, hostname: str, pid: int, now: datetime
) -> None:
    """Record that `worker` runs for `storm` (again, if the id was used before)."""
    values = {
        "storm": storm,
        "hostname": hostname,
        "pid": pid,
        "started_at": require_aware(now),
        "heartbeat_at": now,
        "staged_through": None,
        "stopped_at": None,
    }
    with engine.begin() as conn:
        if not conn.execute(update(_w).where(_w.c.worker_id == worker).values(**values)).rowcount:
            conn.execute(insert(_w).values(worker_id=worker, **values))


def heartbeat(
    *, engine: Engine, worker: str, now: datetime, staged_through: datetime | None = None
) -> bool:
    """Say `worker` is alive (and, if given, has staged every item firing by
    `staged_through`). Returns False if the worker is not registered or was stopped."""
    values: dict[str, Any] = {"heartbeat_at": require_aware(now)}
    if staged_through is not None:
        values["staged_through"] = staged_through
    with engine.begin() as conn:
        return bool(
            conn.execute(
                update(_w)
                .where(_w.c.worker_id == worker, _w.c.stopped_at.is_(None))
                .values(**values)
            ).rowcount
        )


def stop_worker(*, engine: Engine, worker: str, now: datetime) -> None:
    """Record a clean stop: the worker is no longer counted live, whatever its heartbeat."""
    with engine.begin() as conn:
        conn.execute(
            update(_w)
            .where(_w.c.worker_id == worker)
            .values(stopped_at=require_aware(now), heartbeat_at=now)
        )


def live_workers(
    *, engine: Engine, storm: str, now: datetime, stale_after: timedelta = STALE_AFTER
) -> list[WorkerInfo]:
    """Workers of `storm` not stopped whose heartbeat is at most `stale_after` old."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(_w)
            .where(
                _w.c.storm == storm,
                _w.c.stopped_at.is_(None),
                _w.c.heartbeat_at >= require_aware(now) - stale_after,
            )
            .order_by(_w.c.worker_id)
        ).all()
    return [WorkerInfo(**r._mapping) for r in rows]
