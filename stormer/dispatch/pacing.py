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
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stormer.channels.base import Channel


class Pacer:
    """A sliding window of send times: `wait()` returns when one more send fits, and counts it.

    Safe for concurrent tasks on one event loop: between the check and the count nothing
    awaits."""

    def __init__(
        self,
        n: int,
        period: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
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


class Gates:
    """How many requests may be in flight at once: per channel, what it declares
    (`Channel.concurrency`) unless `overrides` (a benchmark's) says otherwise; per account,
    `per_account`; and each account's pace, where its channel declares one. (A channel's
    connection type does not matter here: only its class data is read.)"""

    def __init__(self, *, per_account: int, overrides: Mapping[str, int] | None = None) -> None:
        self._per_account = per_account
        self._overrides = dict(overrides or {})
        self._platforms: dict[str, asyncio.Semaphore] = {}
        self._accounts: dict[str, asyncio.Semaphore] = {}
        self._pacers: dict[str, Pacer] = {}

    def platform(self, channel: Channel[Any]) -> asyncio.Semaphore:
        """The gate shared by every account of `channel`."""
        if channel.name not in self._platforms:
            n = self._overrides.get(channel.name, channel.concurrency)
            self._platforms[channel.name] = asyncio.Semaphore(n)
        return self._platforms[channel.name]

    def account(self, name: str) -> asyncio.Semaphore:
        """The gate of one account."""
        if name not in self._accounts:
            self._accounts[name] = asyncio.Semaphore(self._per_account)
        return self._accounts[name]

    def pacer(self, account: str, channel: Channel[Any]) -> Pacer | None:
        """The account's pace, if its channel declares one (`Channel.pace`)."""
        if channel.pace is None:
            return None
        if account not in self._pacers:
            self._pacers[account] = Pacer(*channel.pace)
        return self._pacers[account]
