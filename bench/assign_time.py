"""Time `stormer.plan.assign` (which account posts which text) on the burst benchmark's storm.

    .venv/bin/python bench/assign_time.py [--accounts 10000 60000] [--runs 3]

The storm is `burst.py`'s: N accounts round-robin over the six platforms, one post each, 40
texts shared by five platforms and one text of its own per X account (N / 6 X texts) — the
case where every X account chooses among thousands of candidates. Prints the load time, then
the minimum and median wall time of `assign` over `--runs` runs, per N. No target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[10_000, 60_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    from burst import write_storm

    from stormer.plan import assign
    from stormer.storm import load_storm

    for n in args.accounts:
        with tempfile.TemporaryDirectory(prefix="assign-") as tmp:
            write_storm(Path(tmp), n, "http://127.0.0.1:9")
            t0 = time.perf_counter()
            storm = load_storm(tmp)
            loaded = time.perf_counter() - t0
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            plan = assign(storm)
            times.append(time.perf_counter() - t0)
        assert len(plan) == n
        print(
            f"{n:>7,} accounts, {len(storm.posts):,} posts: load {loaded:.2f} s, "
            f"assign min {min(times):.3f} s, median {statistics.median(times):.3f} s "
            f"({args.runs} runs)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
