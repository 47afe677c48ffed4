"""One storm of the fault matrix, run in this process: the example storm (six platforms, eight
accounts) against the simulator, one worker (`Dispatcher`) on the test's database, and the
cell's fault injected once every item is staged, before T (`at_t`, run in a thread while the
worker runs: it may wait for the burst, stop a database server, revoke a token).

T is set once the slow part (loading, planning, scheduling) is over, `staging_time()` ahead,
as the process tests do (fixtures_workers.py); the run fails if staging is not over a second
before the attempts are recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from example import example_against, schedule_storm
from faults_count import Tally, count, landed
from fixtures_workers import staging_time
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from timing import PATIENCE, far_ahead, move_storm, wait_until

from stormer.dispatch.dispatcher import Dispatcher, Settings
from stormer.outbox.models import Outbox
from stormer.storm import Storm

# Short leases: a worker's items whose burst failed are taken up again within seconds.
SETTINGS = Settings(
    staging_window=timedelta(minutes=5),
    grace=timedelta(minutes=2),
    lease=timedelta(seconds=3),
    poll_seconds=0.3,
    lead_seconds=0.5,
)
# Telegram and Discord webhooks offer no idempotency and no read-back: an unknown outcome
# there can only end `unconfirmed` (docs/architecture.md, channels/telegram.py, discord.py).
CANNOT_ASK = frozenset({"telegram", "discord"})


def storm_folder(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch, *, posts_per_account: int = 1
) -> Path:
    """The example storm with every account talking to `server` (the simulator, or a proxy in
    front of it), its credentials in the environment, no keyring."""
    root = example_against(tmp_path / "storm", server, monkeypatch)
    if posts_per_account != 1:
        config = root / "config.toml"
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                "posts_per_account = 1", f"posts_per_account = {posts_per_account}"
            ),
            encoding="utf-8",
        )
    return root


def configure(simulator: str, **config: Any) -> None:
    httpx.post(f"{simulator}/_sim/config", json=config, timeout=30).raise_for_status()


def rows(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        found = list(session.scalars(select(Outbox)))
        session.expunge_all()
        return found


@dataclass
class Run:
    """A storm run under one fault: its T, the outbox at the end, and the tally."""

    at: datetime
    rows: list[Outbox]
    tally: Tally


def schedule_far_ahead(root: Path, engine: Engine) -> tuple[Storm, datetime]:
    """Schedule the storm an hour ahead (loading and planning are slow on a loaded machine:
    not on the clock); `move_storm` brings T close when the test is ready."""
    start = far_ahead()
    return schedule_storm(root, engine, start), start


def staged_all(engine: Engine) -> bool:
    found = rows(engine)
    return bool(found) and all(r.staged_at is not None and r.attempts == 0 for r in found)


def run_storm(
    root: Path,
    engine: Engine,
    simulator: str,
    *,
    at_t: Callable[[datetime], None] = lambda at: None,
    settings: Settings = SETTINGS,
    staged_before_t: bool = True,
) -> Run:
    """Schedule the storm, stage it, inject the fault (`at_t(T)`), and run the worker until
    every item is final; then count. Without `staged_before_t` (a fault that slows staging
    past T) nothing waits for staging: `at_t` is called at once."""
    storm, start = schedule_far_ahead(root, engine)
    at = (datetime.now(UTC) + staging_time()).replace(microsecond=0)
    move_storm(engine, root, start, at)
    storm = replace(storm, at=at)

    async def main() -> None:
        worker = asyncio.create_task(
            Dispatcher(storm, engine, settings=settings).run(until_done=True)
        )
        try:
            await asyncio.to_thread(
                wait_until,
                "every item staged a second before its attempt is recorded",
                lambda: worker.done() or not staged_before_t or staged_all(engine),
                by=at - timedelta(seconds=settings.lead_seconds + 1),
                seen=lambda: sorted((r.platform, r.state, r.error) for r in rows(engine)),
            )
            assert not worker.done(), "the worker stopped before T"
            await asyncio.to_thread(at_t, at)
        except BaseException:
            worker.cancel()
            raise
        await asyncio.wait_for(worker, PATIENCE.total_seconds())

    asyncio.run(main())
    found = rows(engine)
    tally = count(found, landed(simulator))
    print(f"counted: {tally.summary()}")  # the matrix's figures, shown with -s or on failure
    return Run(at, found, tally)
