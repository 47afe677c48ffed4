"""Fixtures and helpers for tests that run `stormer run` workers as processes against the
simulator, kill them (kill -9) and count what landed: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from example import CREDENTIALS, add_accounts, copy_example, point_accounts_at, set_storm_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from timing import PATIENCE, far_ahead, move_storm, wait_until

from stormer.dispatch.dispatcher import Settings
from stormer.outbox.db import make_engine
from stormer.outbox.models import Outbox, Worker
from stormer.timezones import iso_utc

if TYPE_CHECKING:
    from lan import Host

EXTRA_ACCOUNTS = 40  # Mastodon accounts added to the example storm, for a real burst
ITEMS = 8 + EXTRA_ACCOUNTS  # one post per account
# How long before T a worker records the attempts of its burst (`sending`).
LEAD = timedelta(seconds=Settings().lead_seconds)
# T is set this far ahead once the workers are up: staging the storm takes a few seconds on a
# loaded 2-core machine, and must be over a second before the first alarm (`set_t`).
STAGING_TIME = timedelta(seconds=10)
# Up to this many runnable tasks per core, STAGING_TIME is enough; beyond, staging takes longer
# in proportion (seen: 3 to 9 s at 5 to 7 per core, where STAGING_TIME was too short).
TASKS_PER_CORE = 3.0


def staging_time() -> timedelta:
    """STAGING_TIME, stretched by how busy the machine is now (its load average per core)."""
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return STAGING_TIME * max(1.0, per_core / TASKS_PER_CORE)


@pytest.fixture
def burst_storm(tmp_path: Path, simulator: str) -> tuple[Path, dict[str, str]]:
    """The example storm plus EXTRA_ACCOUNTS Mastodon accounts against the simulator, and the
    environment its workers run in (credentials, a SQLite database)."""
    root = copy_example(tmp_path / "storm")
    point_accounts_at(root, simulator)
    extra = "".join(
        f'''
[[accounts]]
name = "extra-{n:03d}"
platform = "mastodon"
base_url = "{simulator}"
langs = ["en", "es", "fr", "it", "ar"]
credentials = {{ access_token = "EXTRA_{n:03d}" }}
'''
        for n in range(EXTRA_ACCOUNTS)
    )
    add_accounts(root, extra)
    env = {
        **os.environ,
        **CREDENTIALS,
        **{f"EXTRA_{n:03d}": f"tok-extra-{n}" for n in range(EXTRA_ACCOUNTS)},
        "FPS_DISCORD_WEBHOOK_URL": f"{simulator}/api/webhooks/7/tok-d",
        "STORMER_DATABASE_URL": f"sqlite:///{tmp_path / 'stormer.db'}",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return root, env


def stormer(
    env: dict[str, str], root: Path, *args: str, host: Host | None = None
) -> subprocess.Popen[str]:
    """`stormer ARGS --storm ROOT` in a process of its own, here or on `host` (tests/lan.py)."""
    command = [sys.executable, "-m", "stormer", *args, "--storm", str(root)]
    return subprocess.Popen(
        host.command(command) if host else command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def worker(
    env: dict[str, str], root: Path, *extra: str, host: Host | None = None
) -> subprocess.Popen[str]:
    return stormer(
        env,
        root,
        "run",
        "--until-done",
        "--staging-window",
        "1m",
        "--grace",
        "2m",
        "--lease",
        "3s",
        "--poll",
        "0.3",
        *extra,
        host=host,
    )


def schedule(env: dict[str, str], root: Path, at: datetime) -> None:
    set_storm_time(root, iso_utc(at))
    done = subprocess.run(
        [sys.executable, "-m", "stormer", "schedule", "--storm", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE.total_seconds(),  # checking and planning took over 60 s at load 16
    )
    assert done.returncode == 0, done.stderr


def outbox(env: dict[str, str]) -> list[Outbox]:
    engine = make_engine(env["STORMER_DATABASE_URL"])
    try:
        with Session(engine) as session:
            found = list(session.scalars(select(Outbox)))
            session.expunge_all()
            return found
    finally:
        engine.dispose()


def count_states(env: dict[str, str]) -> Counter[str]:
    engine = make_engine(env["STORMER_DATABASE_URL"])
    try:
        with Session(engine) as session:
            rows = session.execute(select(Outbox.state, func.count()).group_by(Outbox.state))
            return Counter(dict(rows.all()))
    finally:
        engine.dispose()


def count_staged(env: dict[str, str]) -> int:
    """Items staged and not attempted yet: held by a worker (`claimed`, with what staging
    produced) or released as `staged`."""
    engine = make_engine(env["STORMER_DATABASE_URL"])
    try:
        with Session(engine) as session:
            staged = (
                select(func.count())
                .select_from(Outbox)
                .where(
                    Outbox.state.in_(("claimed", "staged")),
                    Outbox.staged_at.is_not(None),
                    Outbox.attempts == 0,
                )
            )
            return session.scalar(staged) or 0
    finally:
        engine.dispose()


def registered_workers(env: dict[str, str]) -> int:
    engine = make_engine(env["STORMER_DATABASE_URL"])
    try:
        with Session(engine) as session:
            running = select(func.count()).select_from(Worker).where(Worker.stopped_at.is_(None))
            return session.scalar(running) or 0
    finally:
        engine.dispose()


def wait_for(
    env: dict[str, str],
    what: str,
    reached: Callable[[], bool],
    workers: list[subprocess.Popen[str]],
    *,
    by: datetime | None = None,
) -> None:
    """`wait_until`, failing at once if a worker exits; on failure the workers are killed:
    none outlives its test."""

    def check() -> bool:
        for proc in workers:
            if proc.poll() is not None:
                out, _ = proc.communicate()
                raise AssertionError(f"a worker exited while waiting for {what}:\n{out[-3000:]}")
        return reached()

    try:
        wait_until(what, check, by=by, seen=lambda: f"the outbox: {dict(count_states(env))}")
    except BaseException:
        for proc in workers:
            if proc.poll() is None:
                kill_hard(proc)
        raise


def start_workers(
    env: dict[str, str], root: Path, count: int, *extra: str, hosts: Sequence[Host] = ()
) -> tuple[datetime, list[subprocess.Popen[str]]]:
    """Schedule the storm far ahead and start `count` workers on it, here or one on each of
    `hosts`; return once each has registered. Their start-up takes seconds on a loaded
    machine: T is set after it (`set_t`). Returns the far time and the workers."""
    assert not hosts or len(hosts) == count
    start = far_ahead()
    schedule(env, root, start)
    on: Sequence[Host | None] = hosts or [None] * count
    workers = [worker(env, root, *extra, host=host) for host in on]
    wait_for(env, f"{count} worker(s) to start", lambda: registered_workers(env) == count, workers)
    return start, workers


def set_t(
    env: dict[str, str], root: Path, start: datetime, workers: list[subprocess.Popen[str]]
) -> datetime:
    """Move the storm, scheduled for `start` far ahead, to T = now + `staging_time()`, and wait
    until the workers have staged every item for it, with a second to spare before they
    record the attempts: the whole storm goes in one burst at T, and a test may still act
    before it. (`stormer schedule` would first spend seconds checking and planning the
    storm, out of the margin: `move_storm` writes T into the rows.)"""
    at = (datetime.now(UTC) + staging_time()).replace(microsecond=0)
    engine = make_engine(env["STORMER_DATABASE_URL"])
    try:
        assert move_storm(engine, root, start, at) == ITEMS
    finally:
        engine.dispose()
    wait_for(
        env,
        "every item to be staged a second before its attempt is recorded",
        lambda: count_staged(env) == ITEMS,
        workers,
        by=at - LEAD - timedelta(seconds=1),
    )
    return at


def slow_answers(simulator: str) -> None:
    """Every answer takes 2.5 to 3.5 s from now on: for two seconds after T, every request is
    in flight and no outcome written (Telegram's and Discord's are written as they come),
    however late a loaded machine lets the test look."""
    config = {"latency_ms": [2500, 3500]}
    httpx.post(f"{simulator}/_sim/config", json=config).raise_for_status()


def wait_for_the_burst(
    env: dict[str, str], at: datetime, workers: list[subprocess.Popen[str]]
) -> None:
    """Wait until T is a moment past and every attempt is recorded, before any outcome."""

    def all_sending() -> bool:
        found = count_states(env)
        assert not found.keys() - {"claimed", "sending"}, f"an outcome came first: {found}"
        return found == Counter({"sending": ITEMS})

    while datetime.now(UTC) < at + timedelta(milliseconds=400):
        time.sleep(0.02)
    wait_for(env, "every attempt to be recorded", all_sending, workers)


def kill_hard(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def finish(env: dict[str, str], root: Path) -> str:
    proc = worker(env, root)
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        states = Counter((r.state, r.lease_owner is not None, r.error) for r in outbox(env))
        raise AssertionError(
            f"the restarted worker did not finish: {states}\n{out[-3000:]}"
        ) from None
    assert proc.returncode == 0, out
    return out


def assert_nothing_lost_nothing_twice(
    simulator: str, env: dict[str, str], at: datetime
) -> Counter[str]:
    rows = outbox(env)
    landed = httpx.get(f"{simulator}/_sim/posts").json()
    counts: Counter[tuple[str, str]] = Counter()
    for row in rows:
        same = [
            p
            for p in landed
            if p["platform"] == row.platform
            and p["text"] == row.text
            and p["account"] == landed_account(row, landed)
        ]
        counts[(row.id, row.state)] = len(same)
    states = Counter(r.state for r in rows)
    for (item, state), n in counts.items():
        assert n <= 1, f"{item} posted {n} times"
        if state == "sent":
            assert n == 1, f"{item} marked sent but not on the platform"
        assert state in ("sent", "unconfirmed"), f"{item} ended {state}"
    assert all(
        datetime.fromisoformat(p["received_at"].replace("Z", "+00:00")) >= at for p in landed
    ), "a post arrived early"
    return states


def landed_account(row: Outbox, landed: list[dict]) -> str:  # type: ignore[type-arg]
    """The simulator names accounts by their credential; map via the item's own post."""
    for p in landed:
        if p["remote_id"] == row.remote_id:
            return str(p["account"])
    return ""
