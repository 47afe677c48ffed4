"""How long `stormer --help` takes (target: ≤ 0.25 s), and which imports cost the most.

    python bench/help_time.py [--runs 20] [--target 0.25] [--top 10] [--strict]

Runs the virtualenv's `stormer` console script (the one next to sys.executable) in fresh
subprocesses and prints min/median/max wall time with PASS/FAIL against the target (on
the median), then `python -X importtime` for one `stormer --help`, the top imports by
cumulative time, so that a regression is easy to trace. A benchmark, not a test: it prints
figures and exits 0 either way, unless --strict (then 1 on FAIL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def stormer_script() -> Path:
    # Not resolved: in a venv, sys.executable is .venv/bin/python, a symlink to the base.
    script = Path(sys.executable).parent / "stormer"
    if not script.exists():
        sys.exit(f"no stormer console script next to {sys.executable}: run `make` first")
    return script


def time_help(script: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(script), "--help"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def import_times(script: Path) -> list[tuple[int, int, str]]:
    """(cumulative µs, self µs, module as indented by -X importtime) for `stormer --help`."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(script), "--help"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        rows.append((int(cumulative_us), int(self_us), name.rstrip()))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--target", type=float, default=0.25, help="seconds (default 0.25)")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)

    script = stormer_script()
    subprocess.run([str(script), "--help"], check=True, stdout=subprocess.DEVNULL)  # warm up
    times = time_help(script, args.runs)
    median = statistics.median(times)
    verdict = "PASS" if median <= args.target else "FAIL"
    print(
        f"stormer --help, {args.runs} runs ({os.cpu_count()} CPUs): "
        f"min {min(times):.3f} s, median {median:.3f} s, max {max(times):.3f} s"
    )
    print(
        f"{verdict}: median {median:.3f} s {'≤' if verdict == 'PASS' else '>'} "
        f"target {args.target:.2f} s"
    )

    rows = import_times(script)
    total = sum(self_us for _, self_us, _ in rows)
    print(
        f"\npython -X importtime {script.name} --help: {len(rows)} modules, "
        f"{total / 1000:.1f} ms importing; top {args.top} by cumulative time:"
    )
    print(f"  {'cumulative':>10}  {'self':>8}  module")
    for cumulative, self_us, name in sorted(rows, reverse=True)[: args.top]:
        print(f"  {cumulative / 1000:8.1f}ms  {self_us / 1000:6.1f}ms  {name.strip()}")
    return 1 if args.strict and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
