"""Pacing: at most `n` sends per `period` seconds from one account, for the platforms whose
limits are known but not announced until it is too late (a 429 with a wait of up to a minute).

Telegram lets a bot send about 20 messages a minute to one group; a Discord webhook about 5
every 2 seconds. A storm usually sends one post per account at T, which never waits here;
an account with several posts at one instant sends the first `n` at once and the rest as the
window allows, instead of collecting 429s (and, on Discord, Cloudflare bans for them).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable


class Pacer:
    """A sliding window of send times: `wait()` returns when one more send fits, and counts it.

    Safe for concurrent tasks on one event loop: between the check and the count nothing
    awaits. `clock` and `sleep` are injectable together, so a test can run the pacer on a
    clock of its own without patching asyncio for the whole process."""

    def __init__(
        self,
        n: int,
        period: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if n < 1 or period <= 0:
            raise ValueError("a pace is at least one send in a positive period")
        self.n, self.period, self._clock, self._sleep = n, period, clock, sleep
        self._sent: deque[float] = deque()

    async def wait(self) -> None:
        while True:
            now = self._clock()
            # A nanosecond of slack: a sleep that ends a rounding error short of the window
            # must not turn into an endless series of zero-length sleeps.
            while self._sent and now - self._sent[0] >= self.period - 1e-9:
                self._sent.popleft()
            if len(self._sent) < self.n:
                self._sent.append(now)
                return
            await self._sleep(self._sent[0] + self.period - now)
