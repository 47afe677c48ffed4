"""The dispatcher's clock: now, in UTC, and waiting for an instant without ever returning early.

The system clock can be stepped (an NTP correction, a person setting it, a VM resumed), and
several workers on several machines share one outbox. So a worker waits for an instant by
the latest of three readings, never the earliest:

- the system clock (`utcnow`);
- the same clock as it would read had it not been stepped since the worker started:
  its reading then plus the time elapsed since, on CLOCK_BOOTTIME (which, unlike the wall
  clock, is never stepped, and unlike CLOCK_MONOTONIC keeps counting while a laptop
  sleeps). A step forward therefore never makes anything early; it makes the worker late
  by the step, and it says so, once;
- on PostgreSQL, the database server's clock, which every worker of the storm shares
  (`Clock.check_server`). An offset above `MAX_OFFSET` stops the worker from taking or
  firing anything: its posts would be early or late by more than a storm's own spread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

log = logging.getLogger("stormer.dispatch")

# Chrony or systemd-timesyncd keep a synchronized clock within milliseconds of true time; a
# burst's own spread is a second or two (bench/README.md). An offset of a second means the
# clock is not synchronized at all, and the worker's posts would land outside the storm.
MAX_OFFSET: Final = timedelta(seconds=1)
# A step smaller than this is the two clocks' reading jitter, not a step.
STEP: Final = timedelta(milliseconds=50)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _elapsed() -> float:
    """Seconds on a clock that is never stepped and counts through suspend, where there is one."""
    return time.clock_gettime(getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC))


class Clock:
    """A worker's clock: `now()` is the earliest of the readings above, so waiting for it
    never ends early by any of them."""

    def __init__(
        self, wall: Callable[[], datetime] = utcnow, elapsed: Callable[[], float] = _elapsed
    ) -> None:
        self._wall, self._elapsed = wall, elapsed
        self._start_wall, self._start = wall(), elapsed()
        self._stepped = timedelta(0)  # how far the system clock was stepped forward, last seen
        self.server_offset = timedelta(0)  # the database server's clock minus ours
        self.refusal: str | None = None  # why this worker may not fire, if it may not

    def now(self) -> datetime:
        wall = self._wall()
        unstepped = self._start_wall + timedelta(seconds=self._elapsed() - self._start)
        stepped = wall - unstepped
        if stepped > STEP and stepped - self._stepped > STEP:
            log.error(
                "the system clock was stepped %.1f s forward: this worker keeps to the clock "
                "it started with, so it fires late rather than early; if the new time is "
                "right, restart the worker",
                stepped.total_seconds(),
            )
        self._stepped = max(stepped, timedelta(0))
        return min(wall, unstepped) + min(self.server_offset, timedelta(0))

    def check_server(self, server_now: Callable[[], datetime | None]) -> None:
        """Measure the database server's clock against ours (`server_now` asks it; None: a
        server without a clock of its own, SQLite), and refuse to fire above `MAX_OFFSET`."""
        before = self._wall()
        server = server_now()
        after = self._wall()
        if server is None:
            return
        offset = server - (before + (after - before) / 2)
        if abs(offset) > MAX_OFFSET:
            self.refusal = (
                f"this machine's clock is {abs(offset.total_seconds()):.1f} s "
                f"{'behind' if offset > timedelta(0) else 'ahead of'} the database server's "
                f"(at most {MAX_OFFSET.total_seconds():.0f} s is allowed): synchronize it "
                "(`timedatectl set-ntp true`, or chrony) and restart this worker"
            )
            if self.server_offset != offset:
                log.error("not firing: %s", self.refusal)
        else:
            self.refusal = None
        self.server_offset = offset


CLOCK = Clock()  # the worker process's clock


async def sleep_until(instant: datetime, now: Callable[[], datetime] | None = None) -> None:
    """Return at `instant` or just after — never before, whatever the timer's resolution or
    a step of the system clock (`CLOCK`)."""
    read = CLOCK.now if now is None else now
    while True:
        delta = (instant - read()).total_seconds()
        if delta <= 0:
            return
        await asyncio.sleep(delta if delta > 0.002 else 0.0005)
