"""The worker's clock (stormer.dispatch.clock): a stepped system clock, or a database server's
clock behind ours, never makes a wait end early; an offset above the bound stops firing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stormer.dispatch.clock import MAX_OFFSET, Clock, sleep_until
from stormer.outbox.db import server_clock

START = datetime(2031, 3, 13, 17, 59, tzinfo=UTC)


class Machine:
    """A system clock that can be stepped, over an elapsed-time clock that cannot."""

    def __init__(self) -> None:
        self.elapsed = 1000.0
        self.step = timedelta(0)

    def wall(self) -> datetime:
        return START + timedelta(seconds=self.elapsed - 1000.0) + self.step


@given(steps=st.lists(st.tuples(st.floats(0, 30), st.floats(-3600, 3600)), min_size=1, max_size=8))
def test_the_clock_never_reads_later_than_the_time_truly_elapsed(
    steps: list[tuple[float, float]],
) -> None:
    """Whatever steps the system clock takes, forward or back, the worker's clock never reads
    later than its start plus the time that truly passed: nothing fires early."""
    machine = Machine()
    clock = Clock(machine.wall, lambda: machine.elapsed)
    for wait, step in steps:
        machine.elapsed += wait
        machine.step += timedelta(seconds=step)
        truly = START + timedelta(seconds=machine.elapsed - 1000.0)
        assert clock.now() <= truly
        assert clock.now() <= machine.wall()  # and never later than the system clock either


def test_a_step_forward_is_kept_out_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    machine = Machine()
    clock = Clock(machine.wall, lambda: machine.elapsed)
    machine.elapsed += 10
    machine.step = timedelta(seconds=120)
    assert clock.now() == START + timedelta(seconds=10)
    machine.elapsed += 1
    assert clock.now() == START + timedelta(seconds=11)
    stepped = [r.getMessage() for r in caplog.records if "stepped" in r.getMessage()]
    assert len(stepped) == 1 and "120.0 s forward" in stepped[0]
    assert "restart the worker" in stepped[0]


def test_a_step_back_makes_the_worker_wait_by_the_system_clock() -> None:
    machine = Machine()
    clock = Clock(machine.wall, lambda: machine.elapsed)
    machine.elapsed += 10
    machine.step = -timedelta(seconds=5)
    assert clock.now() == START + timedelta(seconds=5)


def test_a_server_clock_behind_ours_delays_the_wait_by_the_difference() -> None:
    machine = Machine()
    clock = Clock(machine.wall, lambda: machine.elapsed)
    clock.check_server(lambda: machine.wall() - timedelta(milliseconds=300))
    assert clock.refusal is None
    assert clock.now() == START - timedelta(milliseconds=300)
    clock.check_server(lambda: machine.wall() + timedelta(milliseconds=300))
    assert clock.now() == START  # a server ahead changes nothing: we are not early by it


@pytest.mark.parametrize(("off", "word"), [(2.5, "behind"), (-2.5, "ahead of")])
def test_an_offset_above_the_bound_refuses_to_fire_and_says_how_to_fix_it(
    off: float, word: str
) -> None:
    machine = Machine()
    clock = Clock(machine.wall, lambda: machine.elapsed)
    clock.check_server(lambda: machine.wall() + timedelta(seconds=off))
    assert clock.refusal == (
        f"this machine's clock is 2.5 s {word} the database server's (at most "
        f"{MAX_OFFSET.total_seconds():.0f} s is allowed): synchronize it "
        "(`timedatectl set-ntp true`, or chrony) and restart this worker"
    )
    clock.check_server(lambda: machine.wall())  # synchronized again: firing resumes
    assert clock.refusal is None


def test_sqlite_has_no_server_clock_to_check(tmp_path: object) -> None:
    machine = Machine()
    clock = Clock(machine.wall, lambda: machine.elapsed)
    clock.check_server(lambda: None)
    assert (clock.refusal, clock.server_offset) == (None, timedelta(0))


def test_postgresql_gives_its_own_clock(engine: object) -> None:
    from sqlalchemy import Engine

    assert isinstance(engine, Engine)
    got = server_clock(engine)
    if engine.dialect.name == "sqlite":
        assert got is None
    else:
        assert got is not None and got.tzinfo is not None
        # The throwaway server runs on this machine: the same clock, give or take the query.
        assert abs(got - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_wait_is_not_cut_short_by_a_step_forward_while_waiting() -> None:
    """Real time: the system clock jumps 10 s ahead while a 0.3 s wait runs; the wait still
    lasts 0.3 s."""
    jumped = timedelta(0)
    clock = Clock(lambda: datetime.now(UTC) + jumped, time.monotonic)
    started = time.monotonic()
    instant = clock.now() + timedelta(seconds=0.3)

    async def wait() -> float:
        nonlocal jumped
        waiting = asyncio.create_task(sleep_until(instant, now=clock.now))
        await asyncio.sleep(0.05)
        jumped = timedelta(seconds=10)
        await waiting
        return time.monotonic() - started

    assert asyncio.run(wait()) >= 0.3
