"""Tests that run a storm against the clock, on a machine that may be loaded (CI: 2 cores).

Such a test waits for the state it needs, never for a fixed time: `wait_until` polls, and
gives up only after a generous while. And it does not set T a fixed few seconds ahead before
the slow part (starting an interpreter, loading and planning the storm, staging), which can
take longer than that under load: it schedules the storm `FAR_AHEAD` and moves T closer
(`move_storm`) once the slow part is over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from example import set_storm_time

from stormer.timezones import iso_utc

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from stormer.dispatch.dispatcher import Dispatcher

# Outside any staging window the tests use: scheduled, but nothing is staged yet.
FAR_AHEAD = timedelta(hours=1)
PATIENCE = timedelta(seconds=120)  # a state a test waits for is missing only after this long


def far_ahead() -> datetime:
    return (datetime.now(UTC) + FAR_AHEAD).replace(microsecond=0)


def wait_until(
    what: str,
    reached: Callable[[], bool],
    *,
    by: datetime | None = None,
    seen: Callable[[], object] = lambda: None,
    every: float = 0.1,
) -> None:
    """Poll until `reached()`; fail once `by` (or PATIENCE) has passed, saying what was `seen`
    instead. `reached` may fail by itself when it sees that the state can no longer come."""
    import time

    give_up = by or datetime.now(UTC) + PATIENCE
    while not reached():
        if datetime.now(UTC) > give_up:
            raise AssertionError(f"gave up waiting for {what} at {iso_utc(give_up)}: {seen()}")
        time.sleep(every)


def move_storm(engine: Engine, root: Path, start: datetime, at: datetime) -> int:
    """Move a storm scheduled for `start` to `at`: in its config.toml, and the fire time of
    every item still `pending`, each keeping its distance from T. Returns the items moved.

    Only for items whose content does not name T (posts; a reminder's text does): the rows
    keep the content hash of their schedule, and nothing plans the storm again."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from stormer.outbox.models import Outbox

    set_storm_time(root, iso_utc(at))
    with Session(engine) as session, session.begin():
        rows = session.scalars(select(Outbox).where(Outbox.state == "pending")).all()
        for row in rows:
            row.fire_at += at - start
    return len(rows)


async def run_worker_until(
    dispatcher: Dispatcher, what: str, reached: Callable[[], bool], *, until_done: bool = False
) -> None:
    """Run `dispatcher` until `reached()` (asked in a thread: it may read the database), then
    stop it. Stopping by itself before (with `until_done`: every item final) is a failure."""
    import asyncio

    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(until_done=until_done, stop=stop))
    give_up = datetime.now(UTC) + PATIENCE
    try:
        while not await asyncio.to_thread(reached):
            assert not task.done(), f"the worker stopped before {what}"
            assert datetime.now(UTC) < give_up, f"gave up waiting for {what}"
            await asyncio.sleep(0.1)
        assert not task.done(), f"the worker stopped at {what}"
    finally:
        stop.set()
        await task
