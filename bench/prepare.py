"""Preparing a big storm: load, check, plan, preview and schedule at 1,000 to 50,000 accounts.

    python bench/prepare.py [--accounts 1000 10000 50000] [--keep DIR] [--strict]

For each size, writes a storm of N accounts round-robin over the six platforms, each given
a post of its own with one image (X refuses the same text from many accounts, so a real
storm's posts grow with its accounts), then times, each in its own subprocess:

- load: `load_storm` alone, in a child that prints its in-process time (the cyclic
  collector tuned as `stormer.cli.main` tunes it for every command);
- plan: `plan` alone (after loading, in the same child);
- check: `stormer check --storm DIR`;
- preview: `stormer preview --json --storm DIR` (stdout to a file);
- schedule: `stormer schedule --storm DIR` into a fresh SQLite outbox.

check, preview and schedule are wall times of the whole command (start-up, loading and the
check each of them runs included). The table ends with the run's conditions: CPUs, load
average, Python. Target: the five together under 10 s at 10,000 accounts on one core. A
benchmark, not a test: it exits 0 when the target is missed (1 with --strict), and 1 when a
command fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PLATFORMS = ("mastodon", "bluesky", "x", "telegram", "discord", "matrix")
TARGET_ACCOUNTS = 10_000
TARGET_SECONDS = 10.0
STEPS = ("load", "check", "plan", "preview", "schedule")

# The child timing load and plan in-process (the interpreter's start-up left out), with the
# cyclic collector tuned as every command runs (stormer.cli.main).
_LOAD_AND_PLAN = """
import gc, json, sys, time
from stormer.cli import _GC_THRESHOLDS
gc.set_threshold(*_GC_THRESHOLDS)
from stormer.channels import registry
from stormer.plan import plan
from stormer.storm import load_storm
wall, cpu = time.perf_counter(), time.process_time()
storm = load_storm(sys.argv[1], known_platforms=set(registry.installed()))
loaded = time.perf_counter(), time.process_time()
items = plan(storm)
planned = time.perf_counter(), time.process_time()
print(json.dumps({"load": loaded[0] - wall, "load_cpu": loaded[1] - cpu,
                  "plan": planned[0] - loaded[0], "plan_cpu": planned[1] - loaded[1],
                  "items": len(items), "posts": len(storm.posts)}))
"""

# The child doing each step once, in one process, as one command that loaded, checked,
# planned, previewed and scheduled would: what the steps cost apart from the start-up,
# loading and checking that each separate command repeats. CPU seconds per stage.
_ONE_PASS = """
import gc, json, os, sys, time
from datetime import UTC, datetime
from pathlib import Path
laps, last = {}, time.process_time()
from stormer.cli import _GC_THRESHOLDS  # as every command: imported, and the collector tuned
gc.set_threshold(*_GC_THRESHOLDS)
def lap(name):
    global last
    now = time.process_time(); laps[name] = now - last; last = now
import orjson
from sqlalchemy.orm import Session
from stormer.cli._common import load, open_engine
from stormer.ops.checks import check
from stormer.outbox.schedule import schedule
from stormer.plan import plan, plan_posts
from stormer.preview import item_record, rendered, with_payloads
lap("imports")
storm = load(Path(sys.argv[1])); lap("load")
now = datetime.now(UTC)
posts = list(plan_posts(storm))
items = plan(storm, posts=posts); lap("plan")
errors = [p for p in check(storm, now=now, posts=posts) if p.severity == "error"]; lap("check")
with open(os.devnull, "wb") as out:
    for item, payload in rendered(storm, items):
        out.write(orjson.dumps(item_record(item, payload)))
lap("preview")
engine = open_engine(storm)
with Session(engine) as session, session.begin():
    schedule(with_payloads(storm, items), session=session, storm=storm.slug, now=now)
engine.dispose(); lap("schedule")
print(json.dumps({"laps": laps, "errors": len(errors)}))
"""


def write_storm(out: Path, accounts: int) -> None:
    """`accounts` accounts round-robin over the six platforms and as many posts, each with
    its own text and one of gen_storm.py's two images (so an image file is shared by half
    the posts: checked once per file, not once per post)."""
    sys.path.insert(0, str(BENCH))
    from gen_storm import (
        ALT,
        IMAGES,
        LANG_CHOICES,
        LANGS,
        REPO,
        account_block,
        write_config,
        write_participants,
    )

    if out.exists():
        shutil.rmtree(out)
    images = out / "posts" / "images"
    images.mkdir(parents=True)
    for name in IMAGES:
        shutil.copyfile(REPO / "posts" / "images" / name, images / name)
    # Post i's language: one that account i takes (gen_storm's account languages), so the
    # least-used choice gives most accounts a post of their own.
    for i in range(accounts):
        langs = LANG_CHOICES[i % len(LANG_CHOICES)] or LANGS
        lang = langs[(i // len(LANG_CHOICES)) % len(langs)]
        k = i % len(IMAGES)
        (out / "posts" / f"p-{i + 1:06d}.md").write_text(
            f'+++\nlang = "{lang}"\nimages = [{{ path = "images/{IMAGES[k]}", '
            f'alt = "{ALT[lang][k]}" }}]\n+++\n{_text(lang, i)}\n',
            encoding="utf-8",
        )
    write_config(out, 0, 1, 0)  # gen_storm's [storm] (one post each), reminders, announce
    config = out / "config.toml"
    head = config.read_text(encoding="utf-8").split("\n", 1)[1]
    with config.open("w", encoding="utf-8") as f:
        f.write(f"# Written by bench/prepare.py: {accounts} accounts, a post each.\n{head}")
        for i in range(accounts):
            f.write(account_block(i, PLATFORMS[i % len(PLATFORMS)]) + "\n")
    write_participants(out)


def _text(lang: str, i: int) -> str:
    from gen_storm import POSTS_PER_LANG, post_text

    return f"{i + 1} · " + post_text(lang, i % POSTS_PER_LANG)


def stormer_script() -> Path:
    script = Path(sys.executable).parent / "stormer"
    if not script.exists():
        sys.exit(f"no stormer console script next to {sys.executable}: run `make` first")
    return script


def timed(argv: list[str], stdout: Path) -> tuple[float, float, int]:
    """Wall time, CPU time (user + system, the child's own: os.wait4) and exit code of argv,
    its stdout to a file (stderr passed through)."""
    with stdout.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def measure(storm_dir: Path, work: Path) -> dict[str, float | int | str]:
    script = str(stormer_script())
    row: dict[str, float | int | str] = {}
    child = [sys.executable, "-c", _LOAD_AND_PLAN, str(storm_dir)]
    out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
    row.update(json.loads(out))
    failed = []
    commands = {
        "check": [script, "check", "--storm", str(storm_dir)],
        "preview": [script, "preview", "--json", "--storm", str(storm_dir)],
        "schedule": [script, "schedule", "--storm", str(storm_dir)],
    }
    for step, argv in commands.items():
        (storm_dir / "stormer.db").unlink(missing_ok=True)
        row[step], row[f"{step}_cpu"], code = timed(argv, work / f"{step}.out")
        if code != 0:
            failed.append(f"{step} exit {code}")
    (storm_dir / "stormer.db").unlink(missing_ok=True)
    child = [sys.executable, "-c", _ONE_PASS, str(storm_dir)]
    one_pass = json.loads(subprocess.run(child, check=True, capture_output=True).stdout)
    row.update({f"once_{k}": v for k, v in one_pass["laps"].items()})
    if one_pass["errors"]:
        failed.append(f"check found {one_pass['errors']} error(s)")
    row["failed"] = "; ".join(failed)
    return row


ONCE = ("imports", "load", "plan", "check", "preview", "schedule")


def once_table(rows: dict[int, dict[str, float | int | str]]) -> list[str]:
    """Each step once, in one process: CPU seconds of each stage."""
    lines = [
        "| accounts | " + " | ".join(ONCE) + " | all |",
        "| --- | " + " | ".join("---" for _ in ONCE) + " | --- |",
    ]
    for n, r in rows.items():
        cells = [f"{n:,}", *(f"{float(r[f'once_{s}']):.2f}" for s in ONCE)]
        cells.append(f"**{sum(float(r[f'once_{s}']) for s in ONCE):.1f} s**")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table(rows: dict[int, dict[str, float | int | str]]) -> list[str]:
    """Wall time, and CPU time in parentheses (steadier on a shared machine)."""
    lines = [
        "| accounts | posts | items | load | check | plan | preview | schedule | all five |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, r in rows.items():
        cells = [f"{n:,}", f"{r['posts']:,}", f"{r['items']:,}"]
        cells += [f"{float(r[s]):.2f} s ({float(r[f'{s}_cpu']):.2f})" for s in STEPS]
        wall, cpu = total(r), total(r, "_cpu")
        cells.append(f"**{wall:.1f} s** ({cpu:.1f})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def total(row: dict[str, float | int | str], suffix: str = "") -> float:
    return sum(float(row[f"{s}{suffix}"]) for s in STEPS)


def conditions() -> str:
    load1, load5, _ = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, load average {load1:.1f} (5 min {load5:.1f}), "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[1_000, 10_000, 50_000])
    parser.add_argument("--keep", type=Path, default=None, help="write the storms here and keep")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    rows: dict[int, dict[str, float | int | str]] = {}
    with tempfile.TemporaryDirectory(prefix="stormer-prepare-") as tmp:
        work = args.keep or Path(tmp)
        for n in args.accounts:
            storm_dir = work / f"storm-{n}"
            start = time.perf_counter()
            write_storm(storm_dir, n)
            print(f"wrote {storm_dir} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
            rows[n] = measure(storm_dir, work)
            if rows[n]["failed"]:
                print(f"{n} accounts: {rows[n]['failed']}", file=sys.stderr)
    print("Wall time, and in parentheses the step's CPU time (user + system).\n")
    print("\n".join(table(rows)))
    print(
        "\nEach step once in one process (CPU seconds; the separate commands above each "
        "start Python, load the storm and check it again):\n"
    )
    print("\n".join(once_table(rows)))
    print(f"\nConditions: {conditions()}.")
    if any(r["failed"] for r in rows.values()):
        return 1
    if TARGET_ACCOUNTS in rows:
        # On one core, what the steps take is their CPU time; the wall time is that plus
        # waiting for a shared machine's other work.
        cpu = total(rows[TARGET_ACCOUNTS], "_cpu")
        met = cpu < TARGET_SECONDS
        print(
            f"{'PASS' if met else 'FAIL'}: all five at {TARGET_ACCOUNTS:,} accounts take "
            f"{cpu:.1f} s of CPU {'<' if met else '≥'} {TARGET_SECONDS:.0f} s"
        )
        return 1 if args.strict and not met else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
