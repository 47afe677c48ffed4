"""Chaos, counted, over many seeds: the table for docs/reliability.md.

    .venv/bin/python bench/chaos_bench.py [--seeds 12] [--mixes six,idempotent]
        [--accounts 30] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432]

Named chaos_bench, not chaos: tests/chaos.py is the harness it runs, and one module name
for both would clash (`mypy bench tests`, and an import from bench/ finding itself).

The harness of tests/test_chaos.py (tests/chaos.py): per seed, a storm of `--accounts`
accounts (one imaged post each) through `stormer schedule` and `stormer run` against
`stormer simulator serve --latency 300-900` in its own process; one worker SIGKILLed at the
seed's moment (seed modulo the six moments: before staging, mid-staging, staged, the last
half second before T, in flight, writing outcomes), restarted with `--until-done`; counted
from the simulator's own post log. Prints, per kill moment and platform: runs, items, early,
duplicates, lost, unconfirmed (and how many of those never reached the platform), and the
most one kill left unconfirmed; then the totals and the run's conditions.

The outbox is SQLite in a temporary folder, or, with `--postgres URL` (a server's URL without
a database name, whose user may create databases), a new database per run on that server.
A run whose kill missed its moment (a loaded machine) is counted at the moment it hit and
tried again, as the tests do. A benchmark, not a test: exits 0 whatever it counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the harness lives with the tests that use it


def main(argv: list[str] | None = None) -> int:
    from chaos import MOMENTS, Plan, run_until_hit
    from chaos_count import Table
    from chaos_storm import LATENCY, MIXES, PLATFORMS, Databases, Simulator

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=12, help="seeds per mix (default 12)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--mixes", default=",".join(MIXES), help=f"from {', '.join(MIXES)} (default: all)"
    )
    parser.add_argument("--accounts", type=int, default=30, help="accounts per storm")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server instead of SQLite")
    args = parser.parse_args(argv)
    mixes = [m.strip() for m in args.mixes.split(",") if m.strip()]
    if unknown := set(mixes) - set(MIXES):
        parser.error(f"unknown mix(es) {', '.join(sorted(unknown))}")

    table = Table()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stormer-chaos-") as tmp:
        work = Path(tmp)
        database = "postgresql" if args.postgres else "sqlite"
        databases = (
            Databases(server=args.postgres.rstrip("/")) if args.postgres else Databases(folder=work)
        )
        sim = Simulator()
        try:
            for mix in mixes:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    plan = Plan(mix, seed, accounts=args.accounts, database=database)
                    for result in run_until_hit(sim, plan, databases, work / str(plan)):
                        print(result.describe(), flush=True)
                        table.add(
                            mix=mix,
                            seed=seed,
                            moment=result.moment,
                            counted=result.counted,
                            kills=1,
                            hit=result.hit,
                        )
        finally:
            sim.stop()
    elapsed = time.monotonic() - started
    print(
        f"\nChaos over {args.seeds} seed(s) per mix ({', '.join(mixes)}), {args.accounts} "
        f"accounts per storm, one imaged post each, simulator latency {LATENCY} ms, "
        f"{database}, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the "
        f"end), {elapsed / 60:.1f} min\n"
    )
    seen = [m for m in MOMENTS if any(k[0] == m for k in table.cells)]
    others = sorted({k[0] for k in table.cells} - set(MOMENTS))
    print(table.render((*seen, *others), PLATFORMS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
