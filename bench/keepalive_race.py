"""Posts on stale keep-alive connections when the client's event loop runs late: the cause of
the `unconfirmed` posts the simulator never received in `scale.py`'s 2-worker run.

    .venv/bin/python bench/keepalive_race.py [--waves 4] [--per-wave 500] [--cpu-ms 6]
                                             [--gaps 2,2.9] [--latency 50-300]

Starts `stormer simulator serve` (uvicorn: idle connections closed after 5 s), then sends
waves of `--per-wave` concurrent POSTs, each task first burning `--cpu-ms` of CPU in the event
loop (as building a burst's requests or staging does), with `--gap` seconds between waves, so
that the connections of one wave are reused by the next. Two senders, in turn:

- pooled: one aiohttp pool with `keepalive_timeout=3`, as the burst sender was;
- stormer: `stormer.dispatch.burst.AiohttpSender`, as `stormer run` sends posts now.

It prints, per sender and gap: posts answered, failures by exception and by whether the
connection was new or taken from the pool (aiohttp's own trace signals), and the event loop's
worst lateness (a 50 ms timer's overshoot). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from contextvars import ContextVar
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import burst  # noqa: E402  (bench/burst.py: start_simulator)

reused: ContextVar[bool | None] = ContextVar("reused", default=None)


def busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


async def lateness(worst: list[float]) -> None:
    while True:
        began = time.monotonic()
        await asyncio.sleep(0.05)
        worst[0] = max(worst[0], time.monotonic() - began - 0.05)


def traced() -> Any:
    import aiohttp

    async def new(*_: Any) -> None:
        reused.set(False)

    async def old(*_: Any) -> None:
        reused.set(True)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(new)
    trace.on_connection_reuseconn.append(old)
    return trace


async def waves(args: argparse.Namespace, url: str, name: str) -> None:
    import aiohttp

    from stormer.channels.http import Request
    from stormer.dispatch.burst import AiohttpSender
    from stormer.errors import PlatformError

    worst = [0.0]
    monitor = asyncio.create_task(lateness(worst))
    if name == "pooled":
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=3),
            trace_configs=[traced()],
        )

        async def post(body: bytes) -> None:
            async with session.post(f"{url}/_sim/nothing", data=body) as r:
                await r.read()

        closing: Any = session
    else:
        sender = AiohttpSender()
        await sender.__aenter__()

        async def post(body: bytes) -> None:
            # A Telegram post: it cannot be asked about afterwards, so it gets a connection of
            # its own (posts that can be asked keep the pool and end OutcomeUnknown here).
            request = Request("POST", f"{url}/_sim/nothing", content=body)
            await sender(request, platform="telegram", mutating=True)

        closing = SimpleNamespace(close=lambda: sender.__aexit__())
    answered = 0
    failures: Counter[str] = Counter()

    async def one() -> None:
        nonlocal answered
        busy(args.cpu_ms)
        try:
            await post(b"x" * 2000)
            answered += 1
        except (aiohttp.ClientError, PlatformError) as e:
            how = {True: "pooled connection", False: "new connection"}.get(reused.get(), "")
            failures[f"{type(e).__name__} {how}".strip()] += 1

    for gap in args.gaps:
        worst[0] = 0.0
        for _ in range(args.waves):
            await asyncio.gather(*(one() for _ in range(args.per_wave)))
            await asyncio.sleep(gap)
        print(
            f"{name:<8} gap {gap:>4} s: {answered} answered, failures {dict(failures) or 0}, "
            f"loop up to {worst[0]:.2f} s late",
            flush=True,
        )
        answered = 0
        failures.clear()
    monitor.cancel()
    await closing.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waves", type=int, default=4)
    parser.add_argument("--per-wave", type=int, default=500)
    parser.add_argument("--cpu-ms", type=float, default=6.0)
    parser.add_argument("--gaps", type=lambda s: [float(g) for g in s.split(",")], default=[2, 2.9])
    parser.add_argument("--latency", default="50-300")
    args = parser.parse_args()
    server, url = burst.start_simulator(args.latency)
    try:
        for name in ("pooled", "stormer"):
            asyncio.run(waves(args, url, name))
    finally:
        server.terminate()
        server.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
