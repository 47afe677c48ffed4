"""The dispatcher's clock: now, in UTC, and waiting for an instant without ever returning early."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


async def sleep_until(instant: datetime, now: Callable[[], datetime] = utcnow) -> None:
    """Return at `instant` or just after — never before, whatever the timer's resolution."""
    while True:
        delta = (instant - now()).total_seconds()
        if delta <= 0:
            return
        await asyncio.sleep(delta if delta > 0.002 else 0.0005)
