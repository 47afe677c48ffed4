"""`stormer preview --json` over a generated storm of 200,000 queue items.

    python bench/preview_big.py [--items 200000] [--keep DIR] [--strict]

Generates a storm (bench/gen_storm.py) in a temporary folder, runs
`stormer preview --json --storm DIR` in a subprocess with stdout to a file, and prints its
wall time and peak resident memory with PASS/FAIL against the targets (< 5 s, < 500 MB).
After timing, it checks that the output is one valid JSON array of exactly as many items
as the storm plans. Then it times `stormer check` on the same storm (no target).

Peak memory is the child's own ru_maxrss (os.wait4, kilobytes on Linux): the figure
resource.getrusage(RUSAGE_CHILDREN) gives, but for this one child only.
A benchmark, not a test: it prints figures and exits 0 when a target is missed (1 with
--strict), but always exits 1 when the output is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIME_TARGET = 5.0  # seconds
MEMORY_TARGET = 500  # MB (10^6 bytes)


def stormer_script() -> Path:
    script = Path(sys.executable).parent / "stormer"
    if not script.exists():
        sys.exit(f"no stormer console script next to {sys.executable}: run `make` first")
    return script


def run_measured(argv: list[str], stdout_path: Path) -> tuple[float, float, int, int]:
    """Run argv with stdout to stdout_path: (wall s, CPU s, peak RSS in KB, exit code)."""
    with stdout_path.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode


def validate(path: Path, expected: int) -> tuple[list[str], int]:
    """(what is wrong with the preview output, how many items report problems).

    Wrong: not one JSON array of `expected` objects with distinct ids. The output is
    streamed one item per line ("[", "  {...},", ..., "  {...}", "]"), so it is checked
    line by line, each item parsed on its own, without holding 200 MB of objects; an output
    laid out differently is parsed whole instead."""
    count = flagged = 0
    ids: set[str] = set()
    with path.open(encoding="utf-8") as f:
        if f.readline() != "[\n":
            return _validate_whole(path, expected)
        previous = None
        for line in f:
            line = line.rstrip("\n")
            if previous is not None:
                closing = line == "]"
                if previous.endswith(",") == closing:  # a comma between items only
                    return _validate_whole(path, expected)
                try:
                    item = json.loads(previous if closing else previous[:-1])
                except json.JSONDecodeError as e:
                    return [f"item {count + 1} is not JSON: {e}"], 0
                if not isinstance(item, dict):
                    return [f"item {count + 1} is not an object"], 0
                count += 1
                ids.add(item.get("id"))
                flagged += bool(item.get("problems"))
            previous = line
        if previous != "]":
            return _validate_whole(path, expected)
    return _wrong(count, len(ids), expected), flagged


def _validate_whole(path: Path, expected: int) -> tuple[list[str], int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        return [f"not JSON: {e}"], 0
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        return ["not a JSON array of objects"], 0
    flagged = sum(bool(i.get("problems")) for i in data)
    return _wrong(len(data), len({i.get("id") for i in data}), expected), flagged


def _wrong(count: int, distinct_ids: int, expected: int) -> list[str]:
    wrong = []
    if count != expected:
        wrong.append(f"{count} items, expected {expected}")
    if distinct_ids != count:
        wrong.append(f"{count - distinct_ids} duplicate ids")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="generate the storm in this folder and keep it (and preview.json)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    script = stormer_script()
    with tempfile.TemporaryDirectory(prefix="stormer-bench-") as tmp:
        work = args.keep or Path(tmp)
        storm_dir = work / "storm"
        start = time.perf_counter()
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from gen_storm import generate

        expected = generate(storm_dir, items=args.items)
        print(
            f"generated {expected} queue items in {storm_dir} "
            f"({time.perf_counter() - start:.2f} s, config.toml "
            f"{(storm_dir / 'config.toml').stat().st_size / 1e6:.1f} MB)"
        )

        out = work / "preview.json"
        elapsed, cpu, peak_kb, code = run_measured(
            [str(script), "preview", "--json", "--storm", str(storm_dir)], out
        )
        peak_mb = peak_kb * 1024 / 1e6
        ok_time, ok_mem = elapsed < TIME_TARGET, peak_mb < MEMORY_TARGET
        print(
            f"stormer preview --json: {elapsed:.2f} s ({cpu:.2f} s CPU), peak RSS "
            f"{peak_mb:.0f} MB, output {out.stat().st_size / 1e6:.0f} MB, exit {code}  "
            f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})"
        )
        print(
            f"{'PASS' if ok_time else 'FAIL'}: time {elapsed:.2f} s "
            f"{'<' if ok_time else '≥'} {TIME_TARGET:.0f} s"
        )
        print(
            f"{'PASS' if ok_mem else 'FAIL'}: peak memory {peak_mb:.0f} MB "
            f"{'<' if ok_mem else '≥'} {MEMORY_TARGET} MB"
        )

        problems, flagged = validate(out, expected) if code == 0 else ([f"exit {code}"], 0)
        if problems:
            print("FAIL: output: " + "; ".join(problems))
        else:
            print(
                f"PASS: output is a JSON array of {expected} items with distinct ids "
                f"({flagged} with problems reported)"
            )

        check_elapsed, check_cpu, check_kb, check_code = run_measured(
            [str(script), "check", "--storm", str(storm_dir)], work / "check.txt"
        )
        summary = (work / "check.txt").read_text(encoding="utf-8").strip().splitlines()
        print(
            f"stormer check: {check_elapsed:.2f} s ({check_cpu:.2f} s CPU), peak RSS "
            f"{check_kb * 1024 / 1e6:.0f} MB, "
            f"exit {check_code} (no target): {summary[-1] if summary else '(no output)'}"
        )

    if problems:
        return 1
    return 1 if args.strict and not (ok_time and ok_mem) else 0


if __name__ == "__main__":
    sys.exit(main())
