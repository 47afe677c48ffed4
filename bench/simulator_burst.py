"""A burst of create-post requests against `stormer simulator serve`: wall time, throughput,
and per-request latency percentiles, with a bare aiohttp client (the floor a dispatcher can
reach). The simulator runs in its own process, as in a rehearsal.

    .venv/bin/python bench/simulator_burst.py --requests 2000
    .venv/bin/python bench/simulator_burst.py --requests 10000 --latency 50-300
    .venv/bin/python bench/simulator_burst.py --requests 3000 --stack asyncio,h11
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path


async def burst(url: str, requests: int, connections: int, platform: str) -> list[float]:
    import aiohttp

    durations: list[float] = []
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            started = time.perf_counter()
            if platform == "mastodon":
                call = session.post(
                    f"{url}/api/v1/statuses",
                    data={"status": f"post {i} #storm"},
                    headers={
                        "Authorization": f"Bearer account-{i % 500}",
                        "Idempotency-Key": f"bench-{i}",
                    },
                )
            else:
                call = session.put(
                    f"{url}/_matrix/client/v3/rooms/!bench:sim/send/m.room.message/t{i}",
                    json={"msgtype": "m.text", "body": f"post {i}"},
                    headers={"Authorization": f"Bearer {TOKENS[i % len(TOKENS)]}"},
                )
            async with call as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
            durations.append(time.perf_counter() - started)

        if platform == "matrix":
            for token in TOKENS:
                async with session.post(
                    f"{url}/_matrix/client/v3/join/!bench:sim",
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    r.raise_for_status()
        await asyncio.gather(*(one(i) for i in range(requests)))
    return durations


TOKENS = [f"account-{i}" for i in range(50)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--connections",
        type=int,
        default=0,
        help="client connection pool size (default: one per request)",
    )
    parser.add_argument("--latency", default=None, help="server latency range in ms, e.g. 50-300")
    parser.add_argument("--platform", choices=("mastodon", "matrix"), default="mastodon")
    parser.add_argument(
        "--stack",
        default=None,
        metavar="LOOP,HTTP",
        help="serve on this uvicorn stack, e.g. asyncio,h11 (default: as `stormer simulator "
        "serve` does, uvloop,httptools)",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the client's event loop, as `stormer run --event-loop` (default asyncio)",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from burst import run_on, start_simulator

    server, url = start_simulator(args.latency or "", args.stack)
    try:
        connections = args.connections or args.requests
        server_cpu = cpu_seconds(server.pid)
        started, client_cpu = time.perf_counter(), time.process_time()
        durations = run_on(args.loop, burst(url, args.requests, connections, args.platform))
        wall = time.perf_counter() - started
        # CPU seconds are steadier than wall time on a shared machine: what each side spent.
        client_cpu = time.process_time() - client_cpu
        server_cpu = cpu_seconds(server.pid) - server_cpu
        import httpx

        logged = len(httpx.get(f"{url}/_sim/posts", timeout=60).json())
    finally:
        server.terminate()
        server.wait(timeout=15)
    durations.sort()

    def pct(p: float) -> float:
        return durations[min(len(durations) - 1, int(p / 100 * len(durations)))] * 1000

    print(
        f"{args.requests} x {args.platform} create-post, {connections} connections, "
        f"server latency {args.latency or 'none'}, server stack "
        f"{args.stack or 'stormer simulator serve'}, client loop {args.loop}, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(f"  wall {wall:.2f} s, {args.requests / wall:.0f} req/s, posts logged {logged}")
    print(
        f"  CPU: server {server_cpu:.2f} s ({server_cpu / args.requests * 1e3:.2f} ms a "
        f"request), client {client_cpu:.2f} s"
    )
    print(
        f"  per request: p50 {pct(50):.0f} ms, p90 {pct(90):.0f} ms, p99 {pct(99):.0f} ms, "
        f"max {durations[-1] * 1000:.0f} ms, mean {statistics.mean(durations) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
