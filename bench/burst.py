"""The storm burst: N accounts, one post each, on all six platforms at one instant T, sent to
`stormer simulator serve` (its own process, with server latency), judged by the simulator's
own receive times — for stormer's Dispatcher and, in the same run, for two references.

    .venv/bin/python bench/burst.py [--accounts 10000] [--latency 50-300]
                                    [--only floor,stormer,naive] [--loop asyncio|uvloop]
                                    [--strict]

Contenders, each in its own subprocess (so peak memory is its own, from os.wait4), with the
simulator reset before each:

- `floor`: a bare aiohttp loop. The final requests are built beforehand by stormer's own
  plugins (Bluesky sessions, Matrix joins… done before T), then at T one ClientSession
  `asyncio.gather`s them all, nothing else around it.
- `stormer`: the product. A storm folder with N accounts (each with its own credential in its
  own environment variable), an SQLite outbox, `schedule`, then `Dispatcher(...).run(
  until_done=True)` in-process (poll 1 s, staging window covering T, default limits).
- `naive`: one APScheduler 3 BackgroundScheduler job per post at T (the default thread pool of
  10 threads), each a synchronous httpx call of the same prebuilt request. APScheduler's
  default misfire grace (1 s) would silently drop most posts, so it is set to None here.
- `stormer-nogates` (not run by default): stormer with the per-platform gates
  (`Settings.per_platform`) raised to N, to show what the rest of the pipeline costs.

Per contender, from `GET /_sim/posts`: lateness (received_at − T) p50/p99/max of each
expected item's first landing, early (any post received before T), duplicates (an item landed
more than once: platform + simulator account + text), lost (an item that never landed),
other (a post nobody expected), peak RSS; then stormer p99 / floor p99 (target ≤ 1.5) and naive
p99 / stormer p99 (target ≥ 50), 0 early, 0 duplicates, 0 lost.

`staging` is, for floor and naive, building the requests with the plugins (httpx, 100 at a
time); for stormer, from the dispatcher's start until every item is staged in memory (it
stages `Settings.claim_limit` items per pass, and an item whose staging failed is tried again
`retry_after_staging_failure` later). T is chosen so that staging ends before it (`--margin`);
the report warns when it did not.

A benchmark, not a test: exits 0 whatever the figures; `--strict` exits 1 on a missed target.
Posts are text only (one request per item on every platform), so that all three contenders
send exactly one create-post request per item.

Diagnostics (stormer contenders, environment variables): BURST_DEBUG=1 prints each sync pass,
each alarm and every exception raised by stormer's aiohttp sender; BURST_KEEPALIVE=3 sets the
client's aiohttp `keepalive_timeout` (default 15 s) to try the fix proposed in README.md.
BURST_GC=freeze calls `gc.freeze()` when the alarm rings, before the burst, and
BURST_GC=disable turns the cyclic garbage collector off from then until `fire()` returns,
to try what the collector costs the burst; the stormer child always prints (stderr) how many
collections of each generation ran during `fire()` and their summed wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))  # the storm's accounts are written as the tests do
from storm_accounts import DISCORD_HOOK0, TELEGRAM_BOT0, account_block, storm_table  # noqa: E402
from storm_accounts import secret_of as platform_secret  # noqa: E402

PLATFORMS = ("mastodon", "bluesky", "x", "telegram", "discord", "matrix")
CONTENDERS = ("floor", "stormer", "naive", "stormer-nogates")
HASHTAG = "#FreeEveryStudent"
MATRIX_ROOMS = 20
TARGET_FLOOR_RATIO = 1.5
TARGET_NAIVE_RATIO = 50.0
# Staging for floor and naive: items at once (and connections), and tries per item.
STAGING_CONNECTIONS = 100
STAGING_ATTEMPTS = 3


# --- the storm ---------------------------------------------------------------------------


def platform_of(i: int) -> str:
    return PLATFORMS[i % len(PLATFORMS)]


def env_name(i: int) -> str:
    return f"BURST_{i:06d}_SECRET"


def secret_of(i: int, url: str) -> str:
    """Account i's credential (deterministic; each account is its own simulator user)."""
    return platform_secret(platform_of(i), i, url)


def handle_of(i: int) -> str:
    return f"acc-{i:06d}.bsky.test"


def sim_account(i: int, url: str) -> str:
    """The `account` the simulator logs for account i's posts (derived as it derives it)."""
    from stormer.simulator import bluesky, mastodon_oauth, matrix_auth, x_auth
    from stormer.simulator.state import digest

    platform, secret = platform_of(i), secret_of(i, url)
    if platform == "mastodon":
        return mastodon_oauth.account_for(secret).username
    if platform == "bluesky":
        return bluesky.handle_for(handle_of(i))
    if platform == "x":
        return x_auth.user_for(secret).username
    if platform == "telegram":
        return str(TELEGRAM_BOT0 + i)
    if platform == "discord":
        return str(DISCORD_HOOK0 + i)
    return f"@u{digest('matrix', secret)[:8]}:{matrix_auth.SERVER}"


def write_storm(out: Path, accounts: int, url: str, image: bool = False) -> None:
    """A storm folder: `accounts` accounts round-robin over the six platforms, one post each.

    40 shared texts for five platforms (as in gen_storm.py) and, since X refuses the same text
    from many accounts, one text of its own per X account. With `image`, every post carries
    one small PNG with its alt text (uploaded at staging where the platform allows it)."""
    sys.path.insert(0, str(BENCH))
    from gen_storm import ALT, IMAGES, LANGS, POSTS_PER_LANG, post_text

    posts = out / "posts"
    posts.mkdir(parents=True, exist_ok=True)
    if image:
        (posts / "images").mkdir(exist_ok=True)
        shutil.copyfile(REPO / "posts" / "images" / IMAGES[0], posts / "images" / IMAGES[0])

    def front(lang: str, platforms: str) -> str:
        lines = [f'lang = "{lang}"', f"platforms = [{platforms}]"]
        if image:
            lines.append(f'images = [{{ path = "images/{IMAGES[0]}", alt = "{ALT[lang][0]}" }}]')
        return "+++\n" + "\n".join(lines) + "\n+++\n"

    others = ", ".join(f'"{p}"' for p in PLATFORMS if p != "x")
    for lang in LANGS:
        for k in range(POSTS_PER_LANG):
            (posts / f"{lang}-{k + 1:02d}.md").write_text(
                front(lang, others) + post_text(lang, k) + "\n", encoding="utf-8"
            )
    n_x = sum(1 for i in range(accounts) if platform_of(i) == "x")
    for k in range(n_x):
        text = f"Voice {k + 1}: " + post_text("en", k % POSTS_PER_LANG)
        (posts / f"x-{k + 1:06d}.md").write_text(front("en", '"x"') + text + "\n", encoding="utf-8")
    blocks = [
        f"# Written by bench/burst.py: {accounts} accounts, one post each.\n"
        + storm_table("Burst benchmark", "burst-bench", HASHTAG)
    ]
    for i in range(accounts):
        platform = platform_of(i)
        targets = {
            "telegram": f"@storm_channel_{i:06d}",
            "matrix": f"!storm{i % MATRIX_ROOMS:02d}:matrix.test",
        }
        blocks.append(
            account_block(
                f"acc-{i:06d}",
                platform,
                env_name(i),
                base_url=url if platform != "discord" else None,
                handle=handle_of(i) if platform == "bluesky" else None,
                target=targets.get(platform),
            )
        )
    (out / "config.toml").write_text("\n".join(blocks), encoding="utf-8")


def set_storm_time(storm_dir: Path, at: datetime) -> None:
    config = storm_dir / "config.toml"
    text = re.sub(
        r'(?m)^at = ".*"$',
        f'at = "{at.strftime("%Y-%m-%dT%H:%M:%SZ")}"',
        config.read_text(encoding="utf-8"),
    )
    config.write_text(text, encoding="utf-8")


def set_credentials(accounts: int, url: str) -> None:
    for i in range(accounts):
        os.environ[env_name(i)] = secret_of(i, url)


def expected_keys(storm_dir: Path, url: str) -> dict[tuple[str, str, str], str]:
    """(platform, simulator account, text) → platform, for every planned item."""
    from stormer.plan import plan
    from stormer.storm import load_storm

    storm = load_storm(storm_dir)
    keys: dict[tuple[str, str, str], str] = {}
    for item in plan(storm):
        i = int(item.account.removeprefix("acc-"))
        keys[(item.platform, sim_account(i, url), item.text)] = item.platform
    return keys


# --- shared by the contenders --------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


async def sleep_until(instant: datetime) -> None:
    # Polling the wall clock on purpose: an alarm for an instant, not an event to wait for.
    while (delta := (instant - utcnow()).total_seconds()) > 0:  # noqa: ASYNC110
        await asyncio.sleep(delta if delta > 0.002 else 0.0005)


def run_on(loop: str, main: Any) -> Any:
    """Run the coroutine `main` on the event loop named as `stormer run --event-loop` names
    it (uvloop or asyncio), with the same choice as `stormer run` makes."""
    from stormer.cli.run import loop_factory

    with asyncio.Runner(loop_factory=loop_factory(loop)[1]) as runner:
        return runner.run(main)


def load(storm_dir: Path) -> Any:
    from stormer.storm import load_storm

    return load_storm(storm_dir)


async def stage_with_plugins(storm: Any, concurrency: int = STAGING_CONNECTIONS) -> list[list[Any]]:
    """The final requests of every item (one, or two for a Matrix image and its text), built
    by stormer's plugins over httpx (floor, naive).

    At most `concurrency` items are staged at once, on a pool of as many connections:
    httpcore's pool scans every queued request against every connection each time a
    request starts or ends, so more items in flight than connections made staging
    CPU-bound (1,000 items: 200 in flight on the default 100 connections, 46 items/s, 21 s
    of CPU; 100 on 100, 114 items/s, 7.5 s). An item whose staging failed for a reason
    that may pass (a stale keep-alive connection, a 503) is tried again, as a worker
    tries it again."""
    import httpx

    from stormer.channels import registry
    from stormer.channels.base import Connection
    from stormer.dispatch.connect import client
    from stormer.errors import RateLimited, Transient
    from stormer.plan import plan
    from stormer.secrets import resolve

    # httpcore asks `import sniffio` on every request, and sniffio is not installed: a failed
    # import is not cached, so each one searches sys.path again (0.4 ms, a third of the
    # staging CPU). None in sys.modules makes it fail at once, with the same outcome.
    sys.modules.setdefault("sniffio", None)  # type: ignore[assignment]
    accounts = {a.name: a for a in storm.accounts}
    gate = asyncio.Semaphore(concurrency)
    # 20 kept-alive connections (httpx's default): every kept one is polled for staleness
    # each time a request starts or ends, and 100 of them cost more than reconnecting.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=20)
    async with client(limits=limits) as http:

        async def one(item: Any) -> Any:
            account = accounts[item.account]
            plugin = registry.get(account.platform)
            async with gate:
                conn = Connection(
                    account=account,
                    client=http,
                    credentials=resolve(account, plugin.credential_fields),
                    media_root=storm.root / "posts",
                )
                for attempt in range(STAGING_ATTEMPTS):
                    try:
                        staged = await plugin.stage(item, conn)
                        break
                    except (Transient, RateLimited):
                        if attempt + 1 == STAGING_ATTEMPTS:
                            raise
                        await asyncio.sleep(1.0)
            return list(staged.requests)

        return list(await asyncio.gather(*(one(item) for item in plan(storm))))


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, default=str, indent=1), encoding="utf-8")


# --- floor -------------------------------------------------------------------------------


def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    storm = load(args.storm)
    started = time.perf_counter()
    requests = asyncio.run(stage_with_plugins(storm))
    staging = time.perf_counter() - started
    wire = [[(r.method, r.url, dict(r.headers), r.content or None) for r in rs] for rs in requests]

    async def burst() -> tuple[datetime, Counter[str], float]:
        connector = aiohttp.TCPConnector(limit=args.floor_connections)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=300)
        ) as session:

            async def one(requests: list[tuple[str, str, dict[str, str], bytes | None]]) -> str:
                status = ""
                for method, url, headers, data in requests:  # an item's requests in order
                    async with session.request(
                        method, url, headers=headers, data=data, allow_redirects=False
                    ) as response:
                        await response.read()
                        status = str(response.status)
                return status

            at = (utcnow() + timedelta(seconds=1.0)).replace(microsecond=0) + timedelta(seconds=1)
            await sleep_until(at)
            cpu = time.thread_time()
            results = await asyncio.gather(*(one(w) for w in wire), return_exceptions=True)
            cpu = time.thread_time() - cpu
            done = (utcnow() - at).total_seconds()
        outcomes = Counter(r if isinstance(r, str) else type(r).__name__ for r in results)
        return at, outcomes, done, cpu

    at, statuses, done, cpu = run_on(args.loop, burst())
    return {
        "T": at.isoformat(),
        "staging_s": staging,
        "statuses": dict(statuses),
        "burst_done_s": done,
        "burst_cpu_s": cpu,
    }


# --- naive -------------------------------------------------------------------------------


def run_naive(args: argparse.Namespace) -> dict[str, Any]:
    import threading

    import httpx
    from apscheduler.schedulers.background import BackgroundScheduler

    storm = load(args.storm)
    started = time.perf_counter()
    requests = asyncio.run(stage_with_plugins(storm))
    staging = time.perf_counter() - started

    http = httpx.Client(timeout=300)
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    finished = threading.Event()

    def post(item_requests: list[Any]) -> None:
        try:
            for request in item_requests:  # an item's requests in order
                r = http.request(
                    request.method,
                    request.url,
                    headers=dict(request.headers),
                    content=request.content or None,
                )
            outcome = str(r.status_code)
        except httpx.HTTPError as e:
            outcome = type(e).__name__
        with lock:
            statuses[outcome] += 1
            if sum(statuses.values()) == len(requests):
                finished.set()

    at = (utcnow() + timedelta(seconds=2 + len(requests) * 0.0003)).replace(microsecond=0)
    scheduler = BackgroundScheduler(timezone=UTC)  # executor: a ThreadPoolExecutor of 10
    for request in requests:
        # APScheduler's default misfire_grace_time is 1 s: jobs still queued 1 s after T
        # would be skipped (posts lost). None: run them however late.
        scheduler.add_job(post, "date", run_date=at, args=[request], misfire_grace_time=None)
    added = (utcnow() - at).total_seconds()
    scheduler.start()
    finished.wait(timeout=120 + len(requests) * 0.1)
    done = (utcnow() - at).total_seconds()
    scheduler.shutdown(wait=False)
    http.close()
    return {
        "T": at.isoformat(),
        "staging_s": staging,
        "statuses": dict(statuses),
        "burst_done_s": done,
        "jobs_added_at_s": added,
    }


# --- stormer -----------------------------------------------------------------------------


def run_stormer(args: argparse.Namespace) -> dict[str, Any]:
    import cProfile
    import inspect
    import logging

    from sqlalchemy.orm import Session

    from stormer.dispatch.dispatcher import Dispatcher, Settings
    from stormer.outbox import claims
    from stormer.outbox.db import make_engine, upgrade
    from stormer.outbox.schedule import schedule
    from stormer.outbox.status import status_summary
    from stormer.plan import plan
    from stormer.preview import with_payloads

    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="  [stormer] %(levelname)s %(name)s: %(message)s",
    )
    # While staging outlasts poll_seconds, APScheduler warns at every poll that the sync job
    # is still running ("maximum number of running instances reached"): noise here.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    n = args.accounts
    margin = args.margin if args.margin is not None else 8 + n * 0.012
    at = (utcnow() + timedelta(seconds=margin)).replace(microsecond=0)
    phases: dict[str, float] = {}

    started = time.perf_counter()
    set_storm_time(args.storm, at)
    storm = load(args.storm)
    phases["load"] = time.perf_counter() - started
    items = with_payloads(storm, plan(storm))
    phases["plan"] = time.perf_counter() - started - phases["load"]
    mark = time.perf_counter()
    database = args.work / f"{args.contender}.db"  # a fresh outbox per contender
    for old in args.work.glob(f"{args.contender}.db*"):
        old.unlink()
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    with Session(engine) as session, session.begin():
        schedule(items, session=session, storm=storm.slug, now=utcnow())
    phases["schedule"] = time.perf_counter() - mark
    phases["prepare"] = time.perf_counter() - started
    del items

    # stormer: the plugins' own gates (`Platform.concurrency`); nogates: raised to N.
    gates = {} if args.contender == "stormer" else {p: max(n, 1) for p in PLATFORMS}
    settings = Settings(
        staging_window=timedelta(seconds=margin + 300),
        poll_seconds=1.0,
        grace=timedelta(minutes=10),
        lead_seconds=0.5,
        per_platform=gates,
    )
    dispatcher = Dispatcher(storm, engine, settings=settings)
    if os.environ.get("BURST_KEEPALIVE"):  # experiment: the client's idle-connection timeout
        import aiohttp

        connector_init = aiohttp.TCPConnector.__init__

        def init(self: Any, *a: Any, **kw: Any) -> None:
            kw.setdefault("keepalive_timeout", float(os.environ["BURST_KEEPALIVE"]))
            connector_init(self, *a, **kw)

        aiohttp.TCPConnector.__init__ = init  # type: ignore[method-assign]

    db_calls: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])

    def timed_db(fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:  # runs in the dispatcher's database thread
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - t
                entry = db_calls[fn.__name__]
                entry[0] += 1
                entry[1] += spent
                entry[2] = max(entry[2], spent)

        return timed

    # The dispatcher calls the outbox as `claims.<function>`: time each public one.
    for name, fn in list(vars(claims).items()):
        if inspect.isfunction(fn) and fn.__module__ == claims.__name__ and name[0] != "_":
            setattr(claims, name, timed_db(fn))
    events: dict[str, float] = {}
    profiles: dict[str, cProfile.Profile] = {}
    original_fire = dispatcher.fire

    async def timed_fire(instant: datetime) -> None:
        events["fire_calls"] = events.get("fire_calls", 0) + 1
        if events["fire_calls"] > 1:  # a later sync re-arms the alarm: an empty batch
            await original_fire(instant)
            return
        events["fire_called"] = (utcnow() - at).total_seconds()
        events["ready_at_fire"] = len(dispatcher.items.ready)
        profile = None
        if args.profile:
            profile = profiles["burst"] = cProfile.Profile()
            profile.enable()
        import gc

        gc_mode = os.environ.get("BURST_GC")  # experiment: see README.md
        if gc_mode == "freeze":
            gc.freeze()  # what exists at the alarm is never scanned by the collector again
        elif gc_mode == "disable":
            gc.disable()  # no cyclic collection until the burst is recorded
        collections: list[tuple[int, float]] = []  # (generation, seconds) during the burst
        started: list[float] = []

        def timed_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                collections.append((info["generation"], time.perf_counter() - started.pop()))

        gc.callbacks.append(timed_gc)
        cpu = time.thread_time()  # the event loop's thread only (not the database threads)
        try:
            await original_fire(instant)
        finally:
            events["burst_cpu_s"] = time.thread_time() - cpu
            gc.callbacks.remove(timed_gc)
            if gc_mode == "disable":
                gc.enable()
            by_gen = {
                g: (
                    sum(1 for c in collections if c[0] == g),
                    sum(c[1] for c in collections if c[0] == g),
                )
                for g in (0, 1, 2)
            }
            print(
                "  stormer burst: garbage collections "
                + ", ".join(f"gen{g} {n}× {s:.2f} s" for g, (n, s) in by_gen.items()),
                file=sys.stderr,
            )
            if profile is not None:
                profile.disable()
            events["fire_returned"] = (utcnow() - at).total_seconds()

    dispatcher.fire = timed_fire  # type: ignore[method-assign]
    if os.environ.get("BURST_DEBUG"):
        original_sync, original_alarm = dispatcher._sync, dispatcher._set_alarm

        async def traced_sync() -> None:
            t = (utcnow() - at).total_seconds()
            try:
                await original_sync()
            finally:
                print(
                    f"  [debug] _sync T{t:+.2f} → T{(utcnow() - at).total_seconds():+.2f}, "
                    f"ready {len(dispatcher.items.ready)}",
                    file=sys.stderr,
                )

        def traced_alarm(instant: datetime) -> None:
            print(
                f"  [debug] alarm for {instant} set at T{(utcnow() - at).total_seconds():+.2f}",
                file=sys.stderr,
            )
            original_alarm(instant)

        dispatcher._sync = traced_sync  # type: ignore[method-assign]

        from stormer.dispatch import burst as stormer_burst

        original_call = stormer_burst.AiohttpSender.__call__

        async def traced_call(self: Any, request: Any, *, platform: str, mutating: bool) -> Any:
            try:
                return await original_call(self, request, platform=platform, mutating=mutating)
            except Exception as e:
                cause = e.__context__ or e
                print(
                    f"  [debug] T{(utcnow() - at).total_seconds():+.2f} {platform} "
                    f"{request.method} mutating={mutating}: {type(cause).__name__}: {cause}",
                    file=sys.stderr,
                )
                raise

        stormer_burst.AiohttpSender.__call__ = traced_call  # type: ignore[method-assign]
        dispatcher._set_alarm = traced_alarm  # type: ignore[method-assign]

    async def watch() -> None:
        """Staging progress: the first alarm (set after the first claimed pass is staged),
        99 % and all of the items ready (staged in memory, waiting for T)."""
        begun = time.perf_counter()
        while (
            len(dispatcher.items.ready) < n or not dispatcher.items.armed
        ) and "fire_called" not in events:
            if dispatcher.items.armed and "first_alarm" not in events:
                events["first_alarm"] = time.perf_counter() - begun
            if len(dispatcher.items.ready) >= 0.99 * n and "staged_99" not in events:
                events["staged_99"] = time.perf_counter() - begun
            await asyncio.sleep(0.05)
        events.setdefault("staged_99", time.perf_counter() - begun)
        if dispatcher.items.armed:
            events.setdefault("first_alarm", time.perf_counter() - begun)
        if len(dispatcher.items.ready) >= n:
            events["staged"] = time.perf_counter() - begun
            events["staged_at"] = (utcnow() - at).total_seconds()
        if "staging" in profiles:
            profiles["staging"].disable()

    async def main() -> None:
        if args.profile:
            profiles["staging"] = cProfile.Profile()
            profiles["staging"].enable()
        watcher = asyncio.create_task(watch())
        await dispatcher.run(until_done=True)
        watcher.cancel()

    run_on(args.loop, main())
    summary = status_summary(engine=engine, storm=storm.slug, now=utcnow())
    engine.dispose()
    if args.profile:
        import pstats

        for name, profile in profiles.items():
            path = args.work / f"{args.contender}-{name}.pstats"
            profile.dump_stats(path)
            print(
                f"\n  cProfile of stormer's {name} (event loop thread only), top by tottime:",
                file=sys.stderr,
            )
            pstats.Stats(str(path), stream=sys.stderr).sort_stats("tottime").print_stats(18)
    return {
        "T": at.isoformat(),
        "margin_s": margin,
        "phases": phases,
        "events": events,
        "staging_s": events.get("staged"),
        "db": dict(db_calls),
        "states": summary["counts"],
        "fired": len(dispatcher.fired),
    }


def child_main(args: argparse.Namespace) -> int:
    # Credentials from the environment only, as scale.py's workers get them: the keyring of
    # the machine running the benchmark is not asked (0.5 ms a field, and not the storm's).
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    set_credentials(args.accounts, args.url)
    runner = {"floor": run_floor, "naive": run_naive}.get(args.contender, run_stormer)
    write_result(args.work / f"{args.contender}.json", runner(args))
    return 0


# --- the parent: simulator, contenders, figures -------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The simulator on a stack of one's choice ("loop,http" for uvicorn), to compare stacks.
SERVE_ON = """import sys, uvicorn
from stormer.simulator import SimConfig, create_app, parse_latency
port, latency, loop, http = sys.argv[1:]
config = SimConfig(seed=1, latency_ms=parse_latency(latency) if latency else (0, 0))
uvicorn.run(create_app(config), host="127.0.0.1", port=int(port), loop=loop, http=http,
            log_level="warning", lifespan="off", access_log=False, backlog=4096)
"""


def start_simulator(latency: str, stack: str | None = None) -> tuple[subprocess.Popen[str], str]:
    """`stormer simulator serve` in its own process (or, with `stack` "loop,http", the same
    app on that uvicorn stack); returns once it answers."""
    import httpx

    port = free_port()
    latency = "" if latency in ("", "0") else latency
    if stack:
        command = [sys.executable, "-c", SERVE_ON, str(port), latency, *stack.split(",")]
    else:
        command = [sys.executable, "-m", "stormer", "simulator", "serve"]
        command += ["--port", str(port), "--seed", "1"]
        if latency:
            command += ["--latency", latency]
    # Its stdout (the URL and how to use it) is not needed: the port is known.
    server = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/_sim/config", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("the simulator did not answer within 30 s")
        time.sleep(0.05)


def stop_simulator(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()


def fresh(sim: httpx.Client) -> None:
    """The simulator (an httpx.Client on it) with no posts and its initial config: each
    contender starts alike."""
    sim.post("/_sim/reset").raise_for_status()
    sim.post("/_sim/config", json={}).raise_for_status()


def run_child(
    args: argparse.Namespace, contender: str, work: Path, url: str
) -> tuple[dict[str, Any] | None, int, float]:
    """Run one contender in its own process: (its result, its peak RSS in KB, wall s)."""
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        contender,
        "--url",
        url,
        "--storm",
        str(work / "storm"),
        "--work",
        str(work),
        "--accounts",
        str(args.accounts),
        "--floor-connections",
        str(args.floor_connections),
        "--loop",
        args.loop,
    ]
    if args.margin is not None:
        argv += ["--margin", str(args.margin)]
    if args.profile:
        argv.append("--profile")
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    result_path = work / f"{contender}.json"
    if proc.returncode != 0 or not result_path.is_file():
        print(f"  {contender}: the child process failed (exit {proc.returncode})", file=sys.stderr)
        return None, usage.ru_maxrss, wall
    result = json.loads(result_path.read_text(encoding="utf-8"))
    result_path.unlink()
    return result, usage.ru_maxrss, wall


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted `values`."""
    if not values:
        return math.nan
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def judge(
    posts: list[dict[str, Any]], expected: dict[tuple[str, str, str], str], at: datetime
) -> dict[str, Any]:
    first: dict[tuple[str, str, str], float] = {}
    landed: Counter[tuple[str, str, str]] = Counter()
    early = other = 0
    for post in posts:
        received = datetime.fromisoformat(post["received_at"].replace("Z", "+00:00"))
        late = (received - at).total_seconds()
        early += late < 0
        key = (post["platform"], post["account"], post["text"])
        if key not in expected:
            # A Matrix image is an event of its own before the text event: the post counts
            # once, by its text (early counts it all the same, above).
            other += not (post["platform"] == "matrix" and post.get("media"))
            continue
        landed[key] += 1
        first[key] = min(first.get(key, late), late)
    lateness = sorted(first.values())
    by_platform: dict[str, list[float]] = defaultdict(list)
    for key, late in first.items():
        by_platform[expected[key]].append(late)
    return {
        "landed": len(first),
        "p50": pct(lateness, 50),
        "p99": pct(lateness, 99),
        "max": lateness[-1] if lateness else math.nan,
        "early": early,
        "duplicates": sum(c - 1 for c in landed.values()),
        "lost": len(expected) - len(first),
        "other": other,
        "p99_by_platform": {p: pct(sorted(v), 99) for p, v in sorted(by_platform.items())},
    }


def seconds(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f} s" if abs(value) < 10 else f"{value:.1f} s"


def report(args: argparse.Namespace, rows: dict[str, dict[str, Any]]) -> bool:
    """Print the table and the verdicts; True if every computable target is met."""
    per_platform = Counter(platform_of(i) for i in range(args.accounts))
    n_items = args.accounts
    spread = ", ".join(f"{p} {per_platform[p]}" for p in PLATFORMS)
    print(
        f"\nN = {args.accounts:,} accounts × 1 post ({spread}), server latency {args.latency} "
        f"ms, {os.cpu_count()} CPUs shared with the simulator"
    )
    head = (
        f"{'contender':<16} {'staging':>9} {'p50':>9} {'p99':>9} {'max':>9} {'early':>6} "
        f"{'dup':>5} {'lost':>6} {'other':>6} {'peak RSS':>9}"
    )
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        j = r.get("judged")
        if j is None:
            print(f"{name:<16} failed to run")
            continue
        print(
            f"{name:<16} {seconds(r.get('staging_s')):>9} {seconds(j['p50']):>9} "
            f"{seconds(j['p99']):>9} {seconds(j['max']):>9} {j['early']:>6} "
            f"{j['duplicates']:>5} {j['lost']:>6} {j['other']:>6} "
            f"{r['rss_kb'] / 1024:>6.0f} MB"
        )
    print("\np99 by platform:")
    for name, r in rows.items():
        if r.get("judged"):
            print(
                f"  {name:<16} "
                + "  ".join(f"{p} {seconds(v)}" for p, v in r["judged"]["p99_by_platform"].items())
            )
    for name, r in rows.items():
        if name.startswith("stormer") and r.get("result"):
            res = r["result"]
            ph, ev = res["phases"], res["events"]
            states = {k: v for k, v in res["states"].items() if v}
            print(
                f"\n{name}: prepare {ph['prepare']:.2f} s (load {ph['load']:.2f}, plan "
                f"{ph['plan']:.2f}, schedule {ph['schedule']:.2f}); staging: first alarm "
                f"after {seconds(ev.get('first_alarm'))}, 99 % ready after "
                f"{seconds(ev.get('staged_99'))}, all after {seconds(ev.get('staged'))} "
                f"(T{ev.get('staged_at', math.nan):+.1f} s; margin {res['margin_s']:.0f} s)"
            )
            print(
                f"  fire() called at T{ev.get('fire_called', math.nan):+.3f} s with "
                f"{ev.get('ready_at_fire', 0)} items ready, returned at "
                f"T{ev.get('fire_returned', math.nan):+.2f} s ({ev.get('fire_calls', 0)} calls), "
                f"event loop CPU in it {ev.get('burst_cpu_s', math.nan):.2f} s; "
                f"final states {states}"
            )
            calls = ", ".join(
                f"{fn} {c:.0f}× {total:.2f} s (max {mx:.3f})"
                for fn, (c, total, mx) in sorted(res["db"].items(), key=lambda kv: -kv[1][1])
            )
            print(f"  database calls (count, summed wall time in threads, max): {calls}")
            if ev.get("ready_at_fire", n_items) < n_items:
                print(
                    f"  WARNING: only {ev.get('ready_at_fire')} of {n_items} items were staged "
                    "when the alarm rang: raise --margin, the figures are not valid"
                )
        elif r.get("result"):
            res = r["result"]
            extra = (
                f", jobs added T{res['jobs_added_at_s']:+.2f} s" if "jobs_added_at_s" in res else ""
            )
            if "burst_cpu_s" in res:
                extra += f", event loop CPU {res['burst_cpu_s']:.2f} s"
            print(
                f"\n{name}: staging {res['staging_s']:.2f} s, every answer in by "
                f"T+{res['burst_done_s']:.2f} s{extra}; answers {res['statuses']}"
            )

    ok = True
    print()

    def verdict(label: str, passed: bool) -> None:
        nonlocal ok
        ok &= passed
        print(f"  {label}: {'PASS' if passed else 'FAIL'}")

    floor = rows.get("floor", {}).get("judged")
    naive = rows.get("naive", {}).get("judged")
    for name in ("stormer", "stormer-nogates"):
        s = rows.get(name, {}).get("judged")
        if s is None:
            continue
        if floor:
            ratio = s["p99"] / floor["p99"]
            verdict(
                f"{name} p99 / floor p99 = {ratio:.2f} (target ≤ {TARGET_FLOOR_RATIO})",
                ratio <= TARGET_FLOOR_RATIO,
            )
        if naive:
            ratio = naive["p99"] / s["p99"]
            verdict(
                f"naive p99 / {name} p99 = {ratio:.1f} (target ≥ {TARGET_NAIVE_RATIO:.0f})",
                ratio >= TARGET_NAIVE_RATIO,
            )
        verdict(
            f"{name}: {s['early']} early, {s['duplicates']} duplicates, {s['lost']} lost, "
            f"{s['other']} unexpected (target 0)",
            not (s["early"] or s["duplicates"] or s["lost"] or s["other"]),
        )
    return ok


def parent_main(args: argparse.Namespace) -> int:
    import httpx

    contenders = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        raise SystemExit(
            f"unknown contender(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(CONTENDERS)}"
        )
    with tempfile.TemporaryDirectory(prefix="stormer-burst-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        server, url = start_simulator(args.latency, args.sim_stack)
        rows: dict[str, dict[str, Any]] = {}
        try:
            print(
                f"simulator at {url} (latency {args.latency} ms, seed 1, stack "
                f"{args.sim_stack or 'stormer simulator serve'}); storm in {work}",
                flush=True,
            )
            write_storm(work / "storm", args.accounts, url)
            expected = expected_keys(work / "storm", url)
            assert len(expected) == args.accounts, "two planned items share a key"
            with httpx.Client(base_url=url, timeout=120) as sim:
                for contender in contenders:
                    fresh(sim)
                    print(f"running {contender} …", flush=True)
                    result, rss, wall = run_child(args, contender, work, url)
                    row: dict[str, Any] = {"rss_kb": rss, "wall_s": wall, "result": result}
                    if result is not None:
                        row["staging_s"] = result.get("staging_s")
                        posts = sim.get("/_sim/posts").json()
                        row["judged"] = judge(posts, expected, datetime.fromisoformat(result["T"]))
                    rows[contender] = row
                    print(f"  {contender} done in {wall:.0f} s", flush=True)
        finally:
            stop_simulator(server)
        ok = report(args, rows)
    return 1 if args.strict and not ok else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--accounts",
        type=int,
        default=10_000,
        help="accounts, one post each, round-robin over six platforms",
    )
    parser.add_argument(
        "--latency",
        default="50-300",
        help="simulator latency range in ms (default 50-300; 0: none)",
    )
    parser.add_argument(
        "--only",
        default="floor,stormer,naive",
        help=f"contenders, in order, from {', '.join(CONTENDERS)}",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        help="stormer: seconds from start to T, for loading, scheduling and "
        "staging (default 8 + 0.012 × N)",
    )
    parser.add_argument(
        "--floor-connections",
        type=int,
        default=0,
        help="floor: aiohttp connection limit (default 0: one per request)",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="floor and stormer: the client's event loop at the burst, as `stormer run "
        "--event-loop` (default asyncio, stormer run's default)",
    )
    parser.add_argument(
        "--sim-stack",
        default=None,
        metavar="LOOP,HTTP",
        help="serve the simulator on this uvicorn stack, e.g. asyncio,h11 (default: as "
        "`stormer simulator serve` does, uvloop,httptools)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="stormer: cProfile staging and the burst (the figures then "
        "include the profiler's overhead)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="work in this folder and keep it (storm, database, profiles)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    # Internal: one contender in a child process.
    parser.add_argument("--child", choices=CONTENDERS, dest="contender", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--storm", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.accounts < len(PLATFORMS):
        parser.error(f"--accounts must be at least {len(PLATFORMS)}")
    return child_main(args) if args.contender else parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
