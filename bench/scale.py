"""Many workers, one PostgreSQL: the same storm burst through 1, 2 and 4 `stormer run`
processes sharing one outbox on a PostgreSQL server this script starts (as the test suite
does), through one `stormer run` on SQLite, and through a bare aiohttp floor, all against one
`stormer simulator serve` in the same run.

    .venv/bin/python bench/scale.py [--items 50000] [--workers 1,2,4]
                                    [--only floor,sqlite,pg] [--latency 50-300]
                                    [--margin S] [--claim-batch N] [--loop asyncio|uvloop]
                                    [--floor-connections N] [--keep DIR] [--strict]

The storm is bench/burst.py's (imported, not copied): N accounts round-robin over the six
platforms, one post each, every post with one small PNG and its alt text. Each contender
starts from a simulator reset and a fresh outbox; T is `--margin` seconds after its workers
start (default: from the previous contender's measured start-up and staging rate, times
1.5, plus 20 s: bench/scale_timing.py says why that is safe; the report says when staging
ended later than T − 1 s). A rough estimate of the whole run's time is printed at its
start. Per contender:

- start-up: from launching the workers until the first is up (imported, storm loaded);
  staging: from then until every item is staged in the outbox, and items per second;
- p50 / p99 / max lateness at T from the simulator's own receive stamps, each item's first
  landing (burst.judge); early, duplicates, lost, other (burst.judge's definitions);
- CPU per worker (user + system, the whole process life, from os.wait4) and peak RSS;
- items each worker fired (its `fired N item(s)` log lines).

Then: p99 / floor p99 for every contender (target ≤ 1.5), and, where one worker misses it,
whether more workers reach it. A benchmark, not a test: exits 0 whatever the figures;
`--strict` exits 1 on a missed target or any early, duplicate or lost post.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests")]

import burst  # noqa: E402  (bench/burst.py: the storm, the floor, the judge)
import scale_machine  # noqa: E402  (bench/scale_machine.py: processes, logs, the machine's limits)
import scale_timing  # noqa: E402  (bench/scale_timing.py: margins and the run's estimate)

from stormer.settings import CLAIM_BATCH  # noqa: E402

CONTENDERS = ("floor", "sqlite", "pg")
TARGET_FLOOR_RATIO = burst.TARGET_FLOOR_RATIO
# Runs `stormer run` with the storm's credentials set in its own environment first: 50,000
# of them do not fit in the environment a process can be started with (E2BIG).
WITH_CREDENTIALS = """import json, os, sys
os.environ.update(json.loads(open(sys.argv.pop(1), encoding="utf-8").read()))
sys.argv[0] = "stormer"
from stormer.cli import main
main()
"""


@dataclass
class Row:
    name: str
    workers: int
    staging_s: float | None = None
    startup_s: float | None = None
    judged: dict[str, Any] | None = None
    cpu_s: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    fired: list[int] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    schedule_s: float | None = None
    margin_s: float | None = None
    note: str = ""


# --- PostgreSQL, started as tests/fixtures_db.py starts it ----------------------------------


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    """The suite's throwaway server (initdb, pg_ctl on a free port, run as `postgres` when
    root), by the fixture's own code."""
    import fixtures_db

    try:
        with fixtures_db.throwaway_server() as running:
            yield running
    except BaseException as e:  # pytest's skip/fail outcomes are BaseException
        if type(e).__module__.startswith("_pytest"):
            raise SystemExit(f"PostgreSQL could not be started: {e}") from None
        raise


def new_database(pg: Any) -> str:
    from sqlalchemy import text

    name = f"scale_{uuid.uuid4().hex[:12]}"
    with pg.admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return str(pg.url(name))


# --- one contender: workers on an outbox ------------------------------------------------------


def schedule_at(storm_dir: Path, url: str, at: datetime) -> None:
    """Plan the storm for T = `at` and write it into the outbox at `url`, in this process
    (as burst.py's stormer contender does: `stormer schedule` also checks the storm, which is
    not what this measures)."""
    from sqlalchemy.orm import Session

    from stormer.outbox.db import make_engine, upgrade
    from stormer.outbox.schedule import schedule
    from stormer.plan import plan
    from stormer.preview import with_payloads

    burst.set_storm_time(storm_dir, at)
    storm = burst.load(storm_dir)
    engine = make_engine(url)
    try:
        upgrade(engine)
        with Session(engine) as session, session.begin():
            items = with_payloads(storm, plan(storm))
            schedule(items, session=session, storm=storm.slug, now=datetime.now(UTC))
    finally:
        engine.dispose()


def run_workers(
    args: argparse.Namespace, work: Path, name: str, url: str, workers: int, sim: Any
) -> Row:
    row = Row(name, workers)
    margin = args.margin or scale_timing.margin_for(args.items, workers, args.measured)
    # Scheduling (in this process) comes between choosing T and launching the workers.
    ahead = args.schedule_s or scale_timing.GUESS_SCHEDULE_PER_ITEM_S * args.items
    at = (datetime.now(UTC) + timedelta(seconds=ahead + margin)).replace(microsecond=0)
    began = time.perf_counter()
    schedule_at(work / "storm", url, at)
    row.schedule_s = args.schedule_s = time.perf_counter() - began
    env = {**os.environ, "STORMER_DATABASE_URL": url}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # the environment only
    command = [sys.executable, "-c", WITH_CREDENTIALS, str(work / "credentials.json")]
    command += ["run", "--until-done", "--log-format", "json", "--poll", "1"]
    command += ["--staging-window", f"{int(margin) + 300}s", "--grace", "10m"]
    command += ["--claim-batch", str(args.claim_batch), "--event-loop", args.loop]
    command += ["--storm", str(work / "storm")]
    launched = datetime.now(UTC)
    row.margin_s = (at - launched).total_seconds()
    print(f"  scheduled in {row.schedule_s:.0f} s; T in {row.margin_s:.0f} s", flush=True)
    logs = [(work / f"{name}-{k}.log").open("w") for k in range(workers)]
    procs = [
        subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:
        return measure_workers(args, work, row, url, at, launched, margin, procs, logs, sim)
    except BaseException:
        # Stopped (a signal, Ctrl-C) or failed: the workers must not outlive the benchmark,
        # still holding the PostgreSQL database the caller is about to drop.
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
        raise


def measure_workers(
    args: argparse.Namespace,
    work: Path,
    row: Row,
    url: str,
    at: datetime,
    launched: datetime,
    margin: float,
    procs: list[subprocess.Popen[bytes]],
    logs: list[Any],
    sim: Any,
) -> Row:
    from fixtures_workers import count_states

    name, workers = row.name, row.workers
    env_db = {"STORMER_DATABASE_URL": url}
    staged_at: datetime | None = None
    # Staging may end after T (a loaded machine): waited for up to half the margin more.
    give_up = at + timedelta(seconds=max(60.0, margin / 2))
    while staged_at is None and datetime.now(UTC) < give_up:
        if count_staged(url) >= args.items:
            staged_at = datetime.now(UTC)
            if staged_at > at - timedelta(seconds=1):  # the attempts are recorded at T - 0.5 s
                row.note = f"staging ended at T{(staged_at - at).total_seconds():+.1f} s"
        if any(scale_machine.exited(p) for p in procs):
            break
        time.sleep(0.5)
    # Then the burst and its outcomes: 300 s, plus 10 ms an item (a 50,000-item burst on
    # 2 cores takes minutes before every outcome is written).
    after_t = 300 + 0.01 * args.items
    deadline = time.monotonic() + max(120.0, (at - datetime.now(UTC)).total_seconds() + after_t)
    for k, proc in enumerate(procs):
        left = max(1.0, deadline - time.monotonic())
        try:
            _, status, usage = scale_machine.wait4(proc, left)
        except TimeoutError:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            row.note += f" worker {k} killed after the deadline"
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            row.note += f" worker {k} exited {proc.returncode}"
        row.cpu_s.append(usage.ru_utime + usage.ru_stime)
        row.rss_mb.append(usage.ru_maxrss / 1024)
        logs[k].close()
        row.fired.append(scale_machine.fired_count(work / f"{name}-{k}.log"))
    if staged_at is None:
        row.note = (
            f"staging not done by T + {(give_up - at).total_seconds():.0f} s"
            " (or a worker stopped first)"
        )
    else:
        up = min(
            scale_machine.started_at(work / f"{name}-{k}.log") or staged_at for k in range(workers)
        )
        row.startup_s = (up - launched).total_seconds()
        row.staging_s = (staged_at - up).total_seconds()
        args.measured = scale_timing.Measured(workers, row.startup_s, row.staging_s)
    row.states = {k: v for k, v in count_states(env_db).items() if v}
    row.judged = burst.judge(sim.get("/_sim/posts").json(), args.expected, at)
    return row


def count_staged(url: str) -> int:
    """Items staged so far, fired or not (the suite's count_staged stops counting an item
    once its attempt is recorded: here staging may end after T)."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from stormer.outbox.db import make_engine
    from stormer.outbox.models import Outbox

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            staged = select(func.count()).where(Outbox.staged_at.is_not(None))
            return session.scalar(staged) or 0
    finally:
        engine.dispose()


def run_floor(args: argparse.Namespace, work: Path, url: str, sim: Any) -> Row:
    limit = (
        args.floor_connections
        if args.floor_connections is not None
        else scale_machine.floor_connections(args.items)
    )
    child = argparse.Namespace(
        accounts=args.items,
        floor_connections=limit,
        margin=None,
        profile=False,
        loop=args.loop,
    )
    result, rss_kb, _ = burst.run_child(child, "floor", work, url)
    row = Row("floor", 1, rss_mb=[rss_kb / 1024])
    if limit:
        row.note = f"at most {limit:,} connections at once"
    if result is None:
        row.note = "failed"
        return row
    row.staging_s = result["staging_s"]
    args.measured = scale_timing.Measured(
        1, scale_timing.startup_guess(args.items, 1), row.staging_s
    )
    row.judged = burst.judge(
        sim.get("/_sim/posts").json(), args.expected, datetime.fromisoformat(result["T"])
    )
    return row


# --- the table --------------------------------------------------------------------------------


def conditions(args: argparse.Namespace) -> list[str]:
    import aiohttp
    import sqlalchemy
    import uvicorn
    from sqlalchemy import text

    from stormer.cli.run import loop_factory

    with args.pg.admin.connect() as conn:
        pg_version = conn.execute(text("SHOW server_version")).scalar()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        f"{args.items:,} items ({args.items:,} accounts × 1 post with one PNG, round-robin "
        f"over {', '.join(burst.PLATFORMS)}); simulator latency {args.latency} ms, seed 1, "
        "on uvloop + httptools",
        f"{os.cpu_count()} CPUs shared by the simulator, PostgreSQL and the workers; load "
        f"average {args.load_before} before, {load} after; the simulator's peak RSS "
        + (f"{args.sim_rss_mb:.0f} MB" if args.sim_rss_mb else "unknown"),
        f"Python {platform.python_version()}, PostgreSQL {pg_version}, SQLAlchemy "
        f"{sqlalchemy.__version__}, aiohttp {aiohttp.__version__}, uvicorn "
        f"{uvicorn.__version__}; workers' event loop {loop_factory(args.loop)[0]}",
    ]


def seconds(value: float | None) -> str:
    return burst.seconds(value)


def report(args: argparse.Namespace, rows: list[Row]) -> bool:
    print()
    for line in conditions(args):
        print(line)
    head = f"{'contender':<12} {'start-up':>8} {'staging':>9} {'items/s':>8} " + (
        f"{'p50':>8} {'p99':>8} {'max':>8} {'×floor':>7} {'early':>5} {'dup':>4} {'lost':>5} "
        f"{'CPU per worker':>22} {'fired per worker':>24}"
    )
    print(head)
    print("-" * len(head))
    floor = next((r.judged for r in rows if r.name == "floor" and r.judged), None)
    ok = True
    for r in rows:
        j = r.judged
        if j is None:
            print(f"{r.name:<12} failed {r.note}")
            ok = False
            continue
        rate = f"{args.items / r.staging_s:,.0f}" if r.staging_s else "–"
        ratio = j["p99"] / floor["p99"] if floor else math.nan
        cpu = "/".join(f"{c:.0f}" for c in r.cpu_s) + " s" if r.cpu_s else "–"
        fired = "/".join(str(f) for f in r.fired) if r.fired else "–"
        print(
            f"{r.name:<12} {seconds(r.startup_s):>8} {seconds(r.staging_s):>9} {rate:>8} "
            f"{seconds(j['p50']):>8} {seconds(j['p99']):>8} {seconds(j['max']):>8} "
            f"{ratio:>6.2f}× {j['early']:>5} {j['duplicates']:>4} {j['lost']:>5} "
            f"{cpu:>22} {fired:>24}"
        )
        ok &= not (j["early"] or j["duplicates"] or j["lost"] or j["other"])
        ok &= r.name == "floor" or ratio <= TARGET_FLOOR_RATIO
    print()
    for r in rows:
        extra = [r.note.strip()] if r.note.strip() else []
        if r.margin_s is not None:
            extra.append(f"scheduled in {r.schedule_s:.0f} s, T {r.margin_s:.0f} s after launch")
        if r.states:
            extra.append(f"outbox {r.states}")
        if r.judged and r.judged["other"]:
            extra.append(f"{r.judged['other']} unexpected posts")
        if r.rss_mb:
            extra.append("peak RSS " + "/".join(f"{m:.0f}" for m in r.rss_mb) + " MB")
        if r.judged:
            extra.append(
                "p99 by platform "
                + " ".join(f"{p} {v:.2f}" for p, v in r.judged["p99_by_platform"].items())
            )
        print(f"  {r.name}: " + "; ".join(extra))
    pg = [r for r in rows if r.name.startswith("pg-") and r.judged]
    if floor and pg:
        one = next((r for r in pg if r.workers == 1), None)
        if one and one.judged and one.judged["p99"] > TARGET_FLOOR_RATIO * floor["p99"]:
            better = [
                r.name
                for r in pg
                if r.workers > 1
                and r.judged
                and r.judged["p99"] <= TARGET_FLOOR_RATIO * floor["p99"]
            ]
            print(
                f"\none PostgreSQL worker misses p99 ≤ {TARGET_FLOOR_RATIO} × floor; "
                + (f"{', '.join(better)} reach it" if better else "no more workers reach it")
            )
    return ok


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C: every `finally` and context manager runs, so
    the workers, the floor, the simulator and the PostgreSQL server this run started are
    stopped with it (by default a signal ends Python at once and leaves them running)."""

    def unwind(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, unwind)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000, help="accounts, one post each")
    parser.add_argument(
        "--workers", default="1,2,4", help="PostgreSQL worker counts, in order (default 1,2,4)"
    )
    parser.add_argument(
        "--only", default="floor,sqlite,pg", help=f"contenders from {', '.join(CONTENDERS)}"
    )
    parser.add_argument("--latency", default="50-300", help="simulator latency range in ms")
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        help="seconds from the workers' start to T (default: from the previous contender's "
        "start-up and staging, see bench/scale_timing.py)",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the workers' and the floor's event loop (stormer run --event-loop)",
    )
    parser.add_argument(
        "--claim-batch",
        type=int,
        default=CLAIM_BATCH,
        help=f"items a worker claims per pass (stormer run's default {CLAIM_BATCH:,}); fewer "
        "spread a small storm over more workers",
    )
    parser.add_argument(
        "--floor-connections",
        type=int,
        default=None,
        help="the floor's aiohttp connection limit (default: one connection per request up "
        "to 5,000 items, then 2,000 at once: bench/scale_machine.py says why)",
    )
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    stop_on_signals()
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    if unknown := set(only) - set(CONTENDERS):
        parser.error(f"unknown contender(s) {', '.join(sorted(unknown))}")
    if args.items < len(burst.PLATFORMS):
        parser.error(f"--items must be at least {len(burst.PLATFORMS)}")
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    args.load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    args.measured, args.schedule_s, args.sim_rss_mb = None, None, None
    plan: list[tuple[str, int]] = []
    for contender in only:
        if contender == "pg":
            plan += [(f"pg-{n}", n) for n in counts]
        else:
            plan.append((contender, 1))
    total, parts = scale_timing.estimate(args.items, plan)
    print(
        f"{args.items:,} items: this run should take about {total / 60:.0f} min "
        f"({', '.join(parts)}; guesses from bench/scale_timing.py, longer on a loaded machine)",
        flush=True,
    )

    import httpx

    with tempfile.TemporaryDirectory(prefix="stormer-scale-") as tmp, postgres() as pg:
        args.pg = pg
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        server, url = burst.start_simulator(args.latency)
        rows: list[Row] = []
        try:
            print(f"simulator at {url}; PostgreSQL on port {pg.port}; work in {work}", flush=True)
            burst.write_storm(work / "storm", args.items, url, image=True)
            secrets = {burst.env_name(i): burst.secret_of(i, url) for i in range(args.items)}
            (work / "credentials.json").write_text(json.dumps(secrets), encoding="utf-8")
            args.expected = burst.expected_keys(work / "storm", url)
            with httpx.Client(base_url=url, timeout=300) as sim:
                for name, n in plan:
                    burst.fresh(sim)
                    print(f"running {name} …", flush=True)
                    began = time.perf_counter()
                    if name == "floor":
                        row = run_floor(args, work, url, sim)
                    else:
                        db = (
                            f"sqlite:///{work / f'{name}.db'}"
                            if name == "sqlite"
                            else new_database(pg)
                        )
                        row = run_workers(args, work, name, db, n, sim)
                    rows.append(row)
                    print(f"  {name} done in {time.perf_counter() - began:.0f} s", flush=True)
            args.sim_rss_mb = scale_machine.peak_rss_mb(server.pid)
        finally:
            burst.stop_simulator(server)
        ok = report(args, rows)
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
