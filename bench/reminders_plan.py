"""Planning and previewing participants' reminders for a storm of 5,000 participants.

    python bench/reminders_plan.py [--participants 5000] [--seed 1] [--keep DIR]
                                   [--profile] [--strict]

Copies the example storm (config.toml and posts/ at the repo root; reminders 24h, 1h and 10m
before T) into a temporary folder and writes a participants.csv of N participants: zones
drawn from the real IANA zones, languages among en/es/fr/it/ar, one e-mail contact each.
Then, in this process, it times `load_storm`, `stormer.plan.plan(storm)` (posts and 3 × N
reminders) and rendering every planned item with `stormer.preview.rendered`, and prints the
wall and CPU seconds of each phase, the items, and the peak resident memory (ru_maxrss).

Target: plan + preview of the reminders (3 × 5,000 = 15,000) under 3 s of wall time.
`--profile` runs plan + preview again under cProfile and prints the 25 costliest functions
by own time. A benchmark, not a test: it exits 0 when the target is missed (1 with
--strict), 1 when the plan does not hold the reminders it should.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import shutil
import sys
import tempfile
import zoneinfo
from pathlib import Path

from preview_stages import Stage  # one timer for the benchmarks (prints to stderr)

REPO = Path(__file__).resolve().parents[1]
TARGET = 3.0  # seconds: plan + preview
LANGS = ("en", "es", "fr", "it", "ar")


def real_zones() -> list[str]:
    """IANA region/city zones of the system database (no aliases such as "EST" or "Etc/…")."""
    return sorted(
        z
        for z in zoneinfo.available_timezones()
        if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/"))
    )


def write_storm(dest: Path, participants: int, seed: int) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.toml", dest / "config.toml")
    shutil.copytree(REPO / "posts", dest / "posts")
    rng = random.Random(seed)
    zones = real_zones()
    with (dest / "participants.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["name", "zone", "lang", "contact"])
        for i in range(participants):
            writer.writerow(
                [
                    f"Participant {i:05d}",
                    rng.choice(zones),
                    rng.choice(LANGS),
                    f"participant{i:05d}@example.org",
                ]
            )
    return dest


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="Write the storm here and keep it.")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="stormer-reminders-")
    root = args.keep or Path(tmp.name) / "storm"  # type: ignore[union-attr]
    try:
        write_storm(root, args.participants, args.seed)
        return measure(root, args.participants, args.profile, args.strict)
    finally:
        if tmp is not None:
            tmp.cleanup()


def measure(root: Path, participants: int, profile: bool, strict: bool) -> int:
    print(f"storm: {root} ({participants} participants, Python {sys.version.split()[0]})")
    with Stage("import stormer"):
        from stormer.plan import plan
        from stormer.preview import rendered
        from stormer.storm import load_storm
    with Stage("load_storm") as load:
        storm = load_storm(root)
    with Stage("plan") as planning:
        items = plan(storm)
    reminders = sum(1 for i in items if i.kind == "reminder")
    with Stage(f"render {len(items)} items") as render:
        flagged = sum(1 for _, payload in rendered(storm, items) if payload.problems)
    total = load.wall_s + planning.wall_s + render.wall_s
    plan_preview = planning.wall_s + render.wall_s
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    expected = participants * len(storm.reminder_offsets)
    errors = [p for p in storm.problems if p.severity == "error" and p.file == "participants.csv"]
    print(
        f"  items {len(items)} ({reminders} reminders, {len(items) - reminders} posts), "
        f"{flagged} with problems; participants' errors: {len(errors)}"
    )
    print(
        f"  total {total:.2f} s; plan + preview {plan_preview:.2f} s "
        f"({planning.cpu_s + render.cpu_s:.2f} s CPU); peak RSS {peak:.0f} MB"
    )
    ok = plan_preview < TARGET
    print(f"  target plan + preview < {TARGET:.0f} s: {'PASS' if ok else 'FAIL'}")
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in rendered(storm, plan(storm)):
            pass
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    if reminders != expected:
        print(f"  WRONG: {reminders} reminders planned, expected {expected}", file=sys.stderr)
        return 1
    return 1 if strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
