"""The simulator's clock, for what a platform does later on its own: a Mastodon scheduled
status is published at its time. Real time plus an offset that tests move forward with
`POST /_sim/clock` (control.py), never back (what was published stays published): an hour
ahead is tested in milliseconds.

Nothing runs in the background: before each request `Ticks` lets every platform do what
has fallen due by then (create_app names the tickers). Whoever looks — a client,
`GET /_sim/posts` — sees the same as if it had happened on time, and what happened
records the time it was due.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send


class Clock:
    def __init__(self) -> None:
        self.offset_s = 0.0

    def now(self) -> float:
        """Seconds since the epoch, on the simulator's clock."""
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("the simulator's clock only moves forward, by a finite time")
        self.offset_s += seconds


Ticker = Callable[[], None]  # does what is due on the simulator's clock


class Ticks:
    """ASGI middleware: before any request is answered, every ticker runs once."""

    def __init__(self, app: ASGIApp, tickers: list[Ticker]) -> None:
        self.app = app
        self.tickers = tickers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for tick in self.tickers:
                tick()
        await self.app(scope, receive, send)
