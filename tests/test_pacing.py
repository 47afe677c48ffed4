"""The pacer: at most n sends per period from one account, the first n at once."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stormer.dispatch.pacing import Pacer


class Clock:
    """A clock that only its own `sleep` advances: the pacer is tested without waiting.

    Passed to the pacer rather than patched into asyncio, so that no other event loop in the
    process (a simulator thread started by another test's fixture) can move it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def run_with(clock: Clock, n: int, period: float, sends: int) -> list[float]:
    times: list[float] = []

    async def main() -> None:
        pacer = Pacer(n, period, clock=clock, sleep=clock.sleep)
        for _ in range(sends):
            await pacer.wait()
            times.append(clock.now)

    asyncio.run(main())
    return times


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 25), period=st.floats(0.1, 120), sends=st.integers(0, 80))
def test_no_window_ever_holds_more_than_n_and_nothing_waits_needlessly(
    n: int, period: float, sends: int
) -> None:
    times = run_with(Clock(), n, period, sends)
    assert len(times) == sends
    assert times[:n] == [0.0] * min(n, sends)  # the first n go at once
    for i in range(n, len(times)):
        # the (i)th send waits exactly until the (i-n)th leaves the window
        assert times[i] == pytest.approx(times[i - n] + period)


def test_concurrent_senders_share_one_window() -> None:
    async def main() -> list[float]:
        pacer = Pacer(2, 0.2)
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def send() -> float:
            await pacer.wait()
            return loop.time() - start

        return sorted(await asyncio.gather(*(send() for _ in range(5))))

    times = asyncio.run(main())
    # Relative to the first send, not to the start: a loaded machine may start late.
    first = times[0]
    assert times[1] - first < 0.1  # the second at once
    assert times[2] - first >= 0.2 - 0.005 and times[4] - first >= 0.4 - 0.005


def test_a_pace_needs_a_positive_window() -> None:
    with pytest.raises(ValueError):
        Pacer(0, 1.0)
    with pytest.raises(ValueError):
        Pacer(1, 0)
