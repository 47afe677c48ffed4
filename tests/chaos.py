"""The chaos harness: run a whole storm through the CLI against the simulator, SIGKILL one of
its workers at a moment drawn from a seed, restart it, and count what the platforms got.

One run: a storm (tests/chaos_storm.py) whose outbox `stormer schedule` filled a day ahead
(once per mix and database, copied for each run: scheduling costs seconds of CPU), one or two
`stormer run --until-done` workers, T moved a few seconds ahead once they are up (as
tests/timing.py's `move_storm` does: start-up takes seconds on a loaded machine), one worker
SIGKILLed at the planned moment and a new one started, then, once every worker has finished,
the simulator's post log counted against the outbox (tests/chaos_count.py).

The moment is aimed at by watching the outbox (read-only SQL) and the simulator, and checked
after the kill from what the killed worker held then and when the kill came: a kill that
missed its moment (a loaded machine can delay it) is counted at the moment it hit, and the
plan is run again (TRIES).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaos_count import Counted, Row, count
from chaos_storm import FAR, Databases, Simulator, Storm, Worker, environment
from example import set_storm_time
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from timing import move_storm, wait_until

from stormer.outbox.db import make_engine
from stormer.outbox.models import HELD, Outbox, State
from stormer.outbox.models import Worker as WorkerRow
from stormer.timezones import iso_utc

# When a worker is killed, in the storm's life. `staged`: everything staged, more than LEAD
# before T; `just-before-T`: within LEAD of T, where the worker has recorded its attempts.
MOMENTS = (
    "before-staging",
    "mid-staging",
    "staged",
    "just-before-T",
    "in-flight",
    "writing-outcomes",
)
DATABASES = ("sqlite", "postgresql")
LEAD = 0.5  # s: how long before T a worker records the attempts of its burst (Settings)
STAGING_S = 9.0  # s from moving T to T: staging 30-60 items at 300-900 ms a request
TASKS_PER_CORE = 3.0  # beyond this load per core, STAGING_S stretches in proportion
TRIES = 3  # runs per plan until one kill lands in the planned moment


@dataclass(frozen=True)
class Plan:
    """One seed of one mix: where the storm goes, which kill moment it aims at."""

    mix: str
    seed: int
    accounts: int = 30
    # By default SQLite for the first six seeds of every twelve, PostgreSQL for the next six.
    database: str = ""

    def __post_init__(self) -> None:
        if not self.database:
            chosen = DATABASES[(self.seed // len(MOMENTS)) % len(DATABASES)]
            object.__setattr__(self, "database", chosen)

    @property
    def moment(self) -> str:
        return MOMENTS[self.seed % len(MOMENTS)]

    def __str__(self) -> str:
        return f"{self.mix}-{self.seed:03d}-{self.moment}-{self.database}"


@dataclass
class Result:
    """One run: where its kill landed, and what was counted."""

    plan: Plan
    attempt: int
    moment: str  # where the kill landed
    kill_offset_s: float  # just after the kill, seconds from T (negative: before T)
    workers: int
    held: dict[str, int]  # what the killed worker held when killed, per platform
    counted: Counted
    states: dict[str, int]
    phases: dict[str, float]  # seconds from the start of the run to the end of each phase
    logs: str

    @property
    def hit(self) -> bool:
        return self.moment == self.plan.moment

    def describe(self) -> str:
        return (
            f"{self.plan} try {self.attempt}: killed at {self.moment} (T{self.kill_offset_s:+.2f}"
            f" s) one of {self.workers} worker(s) holding {self.held}; final {self.states}; "
            f"{self.counted.summary()}; phases {self.phases}"
        )


def staging_s() -> float:
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return STAGING_S * max(1.0, per_core / TASKS_PER_CORE)


class Outboxes:
    """The harness's SQL on a run's outbox: reading it, and holding its write lock."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    def rows(self) -> list[Outbox]:
        with Session(self.engine) as session:
            found = list(session.scalars(select(Outbox)))
            session.expunge_all()
            return found

    def registered(self) -> int:
        with Session(self.engine) as session:
            running = select(func.count()).select_from(WorkerRow)
            return session.scalar(running.where(WorkerRow.stopped_at.is_(None))) or 0

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """No other process writes the outbox while this is held (reads go on): SQLite's
        write lock (BEGIN IMMEDIATE, as every stormer transaction starts), PostgreSQL's
        EXCLUSIVE table lock. A worker's write waits for it (SQLite: up to its busy timeout)."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("LOCK TABLE outbox IN EXCLUSIVE MODE"))
            yield

    def close(self) -> None:
        self.engine.dispose()


def run_until_hit(sim: Simulator, plan: Plan, databases: Databases, work: Path) -> list[Result]:
    """Runs of `plan` until one kill lands in its moment (at most TRIES): every run made."""
    results: list[Result] = []
    for attempt in range(TRIES):
        results.append(run(sim, plan, databases, work / f"try{attempt}", attempt=attempt))
        if results[-1].hit:
            break
    return results


def run(
    sim: Simulator, plan: Plan, databases: Databases, work: Path, *, attempt: int = 0
) -> Result:
    """One storm, one kill, one restart; counted."""
    started = time.monotonic()
    rng = random.Random(f"{plan}/{attempt}")
    sim.reset(plan.seed * TRIES + attempt)
    db_url = databases.new(databases.schedule(sim, plan.mix, plan.accounts, work.parent))
    work.mkdir(parents=True)
    root = work / "storm"
    env = environment(sim, plan.mix, plan.accounts, root, db_url)
    set_storm_time(root, iso_utc(FAR))
    workers = 2 if rng.random() < 0.3 else 1
    # Each worker stages its share in one pass: staging at 300-900 ms a request takes seconds.
    storm = Storm(root, env, claim_batch=math.ceil(plan.accounts / workers))
    outbox = Outboxes(db_url)
    try:
        return _run(sim, plan, storm, outbox, rng, workers, attempt, started)
    finally:
        storm.kill_all()
        outbox.close()


def _run(
    sim: Simulator,
    plan: Plan,
    storm: Storm,
    outbox: Outboxes,
    rng: random.Random,
    count_workers: int,
    attempt: int,
    started: float,
) -> Result:
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases[name] = round(time.monotonic() - started, 1)

    workers = [storm.start_worker() for _ in range(count_workers)]
    wait(storm, f"{len(workers)} worker(s) to start", lambda: outbox.registered() == len(workers))
    phase("started")

    at: datetime | None = None
    if plan.moment == "before-staging":
        time.sleep(rng.uniform(0, 0.5))  # a random moment of the idle wait, not a wait for state
        target = rng.choice(workers)
        killed = target.kill()
        seen: set[str] | None = None
        snapshot = outbox.rows()
        storm.start_worker()
        at = move_t(storm, outbox)
    else:
        at = move_t(storm, outbox)
        target, killed, seen = aim(sim, plan.moment, storm, outbox, rng, at)
        snapshot = outbox.rows()
        storm.start_worker()
    phase("killed")
    wait(storm, "every worker to finish", lambda: not storm.alive(), every=0.2)
    phase("finished")

    posts = sim.posts()
    rows = outbox.rows()
    moment = landed_in(target, snapshot, killed, at, seen)
    held = [r for r in snapshot if target.owns(r.lease_owner)]
    counted = count(
        [Row(r.id, r.platform, r.text, r.state, r.remote_id, r.error) for r in rows],
        posts,
        at=at,
        burst_may_have_started=killed[1] >= at.timestamp(),
        image_captions=frozenset({"A flag and an open book"}),
    )
    states: dict[str, int] = {}
    for r in rows:
        states[r.state] = states.get(r.state, 0) + 1
    return Result(
        plan=plan,
        attempt=attempt,
        moment=moment,
        kill_offset_s=killed[1] - at.timestamp(),
        workers=len(workers),
        held=dict(sorted(_by_platform(held).items())),
        counted=counted,
        states=states,
        phases=phases,
        logs="\n".join(f"--- worker {w.pid}\n{w.tail()}" for w in storm.workers),
    )


def _by_platform(rows: list[Outbox]) -> dict[str, int]:
    found: dict[str, int] = {}
    for r in rows:
        found[r.platform] = found.get(r.platform, 0) + 1
    return found


def wait(storm: Storm, what: str, reached: Any, *, every: float = 0.1) -> None:
    """`wait_until`, failing at once (with its log) if a worker stops badly."""

    def check() -> bool:
        storm.check_workers()
        return bool(reached())

    wait_until(what, check, every=every)


def move_t(storm: Storm, outbox: Outboxes) -> datetime:
    """T, moved from FAR to a few seconds from now: the workers start staging."""
    at = (datetime.now(UTC) + timedelta(seconds=staging_s())).replace(microsecond=0)
    assert move_storm(outbox.engine, storm.root, FAR, at) == len(outbox.rows())
    return at


def aim(
    sim: Simulator, moment: str, storm: Storm, outbox: Outboxes, rng: random.Random, at: datetime
) -> tuple[Worker, tuple[float, float], set[str] | None]:
    """Kill a worker at `moment` (after staging began): the worker, the instants just before
    and after the kill, and (writing-outcomes) the texts the simulator had before it."""
    if moment == "mid-staging":
        holders: list[Worker] = []

        def claimed_unstaged() -> bool:
            rows = [r for r in outbox.rows() if r.state in HELD and r.staged_at is None]
            holders[:] = [w for w in storm.workers if any(w.owns(r.lease_owner) for r in rows)]
            return bool(holders)

        wait(storm, "a worker to be staging", claimed_unstaged, every=0.05)
        target = rng.choice(holders)
        time.sleep(rng.uniform(0, 0.2))  # somewhere in its uploads, not a wait for state
        return target, target.kill(), None
    wait(storm, "every item to be staged", lambda: all(r.staged_at for r in outbox.rows()))
    rows = outbox.rows()
    target = rng.choice([w for w in storm.workers if any(w.owns(r.lease_owner) for r in rows)])
    if moment == "writing-outcomes":
        return writing_outcomes(sim, storm, outbox, target, rng, at)
    offset = {
        "staged": -rng.uniform(LEAD + 0.1, LEAD + 1.5),
        "just-before-T": -rng.uniform(0.05, LEAD - 0.05),
        "in-flight": rng.uniform(0.02, 0.25),
    }[moment]
    kill_at = at.timestamp() + offset
    # Polling the clock, not sleeping through: the moment is a fraction of a second wide.
    while (left := kill_at - time.time()) > 0:
        time.sleep(min(left, 0.01))
    return target, target.kill(), None


def writing_outcomes(
    sim: Simulator, storm: Storm, outbox: Outboxes, target: Worker, rng: random.Random, at: datetime
) -> tuple[Worker, tuple[float, float], set[str]]:
    """Kill `target` while it writes the outcomes of its burst. The write takes milliseconds
    once the last answer is in: the harness holds the outbox's write lock from the moment
    every attempt of the burst is recorded (T) until the kill, so the worker, answered, waits
    in its outcome write — as it would on a slow disk or a busy server. On a loaded machine
    the harness may look only after the first outcomes are written (an outcome keeps its
    lease owner): the moment is missed, the kill comes at once, and the plan runs again."""

    def states() -> set[State]:
        return {r.state for r in outbox.rows() if target.owns(r.lease_owner)}

    def attempts_recorded_or_past() -> bool:
        if time.time() < at.timestamp():
            return False
        now = states()
        return now <= {State.SENDING} or not now <= set(HELD)

    wait(storm, "the worker's attempts to be recorded", attempts_recorded_or_past, every=0.05)
    if not states() <= {State.SENDING}:
        return target, target.kill(), set()
    texts = {r.text for r in outbox.rows() if target.owns(r.lease_owner)}
    seen: set[str] = set()

    def all_answered() -> bool:
        seen.clear()
        seen.update(str(p["text"]) for p in sim.posts())
        return texts <= seen

    with outbox.write_lock():
        wait(storm, "the simulator to have every post of the worker", all_answered, every=0.05)
        time.sleep(rng.uniform(0.05, 0.3))  # its answers read: waiting in the write, not a state
        return target, target.kill(), seen


def landed_in(
    target: Worker,
    snapshot: list[Outbox],
    killed: tuple[float, float],
    at: datetime,
    seen: set[str] | None,
) -> str:
    """The moment a kill landed in, from what the killed worker held then (`snapshot`, read
    after the kill, before any other worker could take its items over) and when it came."""
    before, after = killed[0] - at.timestamp(), killed[1] - at.timestamp()
    held = [r for r in snapshot if target.owns(r.lease_owner) and r.state in HELD]
    if not any(r.staged_at for r in snapshot) and not held:
        return "before-staging"
    if not held:
        return "holding-nothing"
    if any(r.staged_at is None for r in held):
        return "mid-staging"
    if after < -LEAD:
        return "staged"
    if after < 0:
        return "just-before-T" if before >= -LEAD else "around-the-attempts"
    if before < 0:
        return "around-T"
    if seen is not None and {r.text for r in held} <= seen:
        return "writing-outcomes"
    return "in-flight"
