"""The chaos harness's storm and processes: a small storm over a mix of platforms, the
simulator in its own process (`stormer simulator serve`, with latency), and `stormer
schedule` / `stormer run` as subprocesses, each worker logging to a file of its own.

Every account is its own simulator user (its own credential in its own environment
variable) and carries one post with one image, whose text is unique in the storm: the
simulator's post log names an item by its text (tests/chaos_count.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from example import REPO, set_storm_time
from sqlalchemy import create_engine, pool, text
from storm_accounts import account_block, secret_of, storm_table
from timing import PATIENCE

from stormer.outbox.db import make_engine, upgrade
from stormer.timezones import iso_utc

PLATFORMS = ("mastodon", "bluesky", "x", "telegram", "discord", "matrix")
# The mixes a run can be made of: all six, and only the platforms where an unknown outcome can
# be settled (an idempotency key or a read-back) — there nothing may end unknown.
MIXES = {
    "six": PLATFORMS,
    "idempotent": ("mastodon", "bluesky", "matrix", "x"),
}
# Neither an idempotency key nor a way to read back what was posted (Telegram's Bot API,
# Discord's webhooks): an unknown outcome stays unknown, and a resend could post twice.
NO_READ_BACK = frozenset({"telegram", "discord"})
LATENCY = "300-900"  # ms, every request: a burst stays in flight for a while
HASHTAG = "#ChaosStorm"
IMAGE = REPO / "posts" / "images" / "flag-book.png"
# Worker options: passes often, a dead worker's claims taken over soon, never fired late.
LEASE_S = 4  # s: longer than a pass takes on a loaded machine, or a live worker loses its claims
GRACE = "2m"

# Where every storm is scheduled first: outside any staging window for a day, so that
# nothing is staged before a run moves T a few seconds ahead (`move_t`).
FAR = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def write_storm(root: Path, url: str, platforms: tuple[str, ...], accounts: int) -> dict[str, str]:
    """A storm folder at `root`: `accounts` accounts round-robin over `platforms`, one imaged
    post each with a text of its own. Returns the credentials' environment variables."""
    posts = root / "posts"
    (posts / "images").mkdir(parents=True)
    shutil.copy(IMAGE, posts / "images" / IMAGE.name)
    env: dict[str, str] = {}
    blocks = [storm_table("Chaos storm", "chaos", HASHTAG)]
    for i in range(accounts):
        platform = platforms[i % len(platforms)]
        (posts / f"voice-{i:03d}.md").write_text(
            f'+++\nlang = "en"\nimages = [{{ path = "images/{IMAGE.name}", alt = "A flag '
            f'and an open book" }}]\n+++\nVoice {i} of the chaos storm: every student has '
            f"the right to learn. {HASHTAG}\n",
            encoding="utf-8",
        )
        variable = f"CHAOS_{i:03d}_SECRET"
        env[variable] = secret_of(platform, i, url)
        targets = {
            "telegram": f"@chaos_channel_{i:03d}",
            "matrix": f"!chaos{i % 4:02d}:matrix.test",
        }
        blocks.append(
            account_block(
                f"acc-{i:03d}",
                platform,
                variable,
                base_url=url if platform != "discord" else None,
                handle=f"acc-{i:03d}.bsky.test" if platform == "bluesky" else None,
                target=targets.get(platform),
            )
        )
    (root / "config.toml").write_text("\n".join(blocks), encoding="utf-8")
    return env


# --- processes -------------------------------------------------------------------------------


SERVE = (sys.executable, "-m", "stormer", "simulator", "serve")


class Simulator:
    """`stormer simulator serve --latency …` in a process of its own, on a free port."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [*SERVE, "--port", "0", "--latency", LATENCY, "--seed", "1"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()  # the base URL, alone on its first line
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the simulator did not start: {self.url!r}")
        self.http = httpx.Client(base_url=self.url, timeout=PATIENCE.total_seconds())

    def reset(self, seed: int) -> None:
        """No posts, sessions or media; the latency it was started with, randomness from `seed`."""
        self.http.post("/_sim/reset").raise_for_status()
        self.http.post("/_sim/config", json={"seed": seed}).raise_for_status()

    def posts(self) -> list[dict[str, object]]:
        found = self.http.get("/_sim/posts").json()
        assert isinstance(found, list)
        return found

    def stop(self) -> None:
        if hasattr(self, "http"):
            self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class Worker:
    """One `stormer run --until-done` process, its log in a file."""

    proc: subprocess.Popen[bytes]
    log: Path
    killed_at: float | None = None  # time.time() just after SIGKILL

    @property
    def pid(self) -> int:
        return self.proc.pid

    def owns(self, lease_owner: str | None) -> bool:
        """Whether an outbox lease names this process (`host:pid:suffix`)."""
        return lease_owner is not None and lease_owner.split(":")[1:2] == [str(self.pid)]

    def kill(self) -> tuple[float, float]:
        """SIGKILL; returns the wall-clock instants just before and just after it was sent."""
        before = time.time()
        os.kill(self.pid, signal.SIGKILL)
        self.killed_at = after = time.time()
        self.proc.wait(30)
        return before, after

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Storm:
    """One storm folder and the environment its commands run in."""

    root: Path
    env: dict[str, str]
    claim_batch: int
    workers: list[Worker] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "stormer", *args, "--storm", str(self.root)]

    def schedule(self, at: float) -> subprocess.Popen[str]:
        """`stormer schedule` for T = `at` (a POSIX time), started; the caller waits."""
        set_storm_time(self.root, iso_utc(datetime.fromtimestamp(at, UTC)))
        return subprocess.Popen(
            self.command("schedule"),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def start_worker(self) -> Worker:
        log = self.root.parent / f"worker-{len(self.workers)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self.command(
                    "run",
                    "--until-done",
                    "--log-format",
                    "text",
                    "--staging-window",
                    "1m",
                    "--grace",
                    GRACE,
                    "--lease",
                    f"{LEASE_S}s",
                    "--poll",
                    "0.3",
                    "--claim-batch",
                    str(self.claim_batch),
                ),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(proc, log)
        self.workers.append(worker)
        return worker

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.proc.poll() is None]

    def check_workers(self) -> None:
        """Fail at once, with its log, if a worker stopped badly (a kill is not one)."""
        for w in self.workers:
            code = w.proc.poll()
            if code not in (None, 0) and w.killed_at is None:
                raise AssertionError(f"worker {w.pid} exited {code}:\n{w.tail()}")

    def kill_all(self) -> None:
        for w in self.alive():
            w.kill()


class Databases:
    """Where runs keep their outboxes: files in a folder (SQLite) or databases on a server
    (PostgreSQL, `server` a URL without the database name). Each storm is scheduled once,
    through the CLI, into a database of its own; each run gets a copy of it (a file copy, or
    CREATE DATABASE … TEMPLATE): `stormer schedule` costs seconds of CPU a run can spare."""

    def __init__(self, *, folder: Path | None = None, server: str | None = None) -> None:
        self.folder, self.server = folder, server
        self.scheduled: dict[tuple[str, int], str] = {}  # (mix, accounts) → its database
        self.made = 0

    @property
    def kind(self) -> str:
        return "sqlite" if self.folder else "postgresql"

    def new(self, template: str | None = None) -> str:
        """A new database: empty, or a copy of `template` (a URL this made)."""
        self.made += 1
        name = f"chaos_{os.getpid()}_{self.made}"
        if self.folder is not None:
            path = self.folder / f"{name}.db"
            if template is not None:
                shutil.copy(template.removeprefix("sqlite:///"), path)
            return f"sqlite:///{path}"
        assert self.server is not None
        admin = create_engine(
            f"{self.server}/postgres", isolation_level="AUTOCOMMIT", poolclass=pool.NullPool
        )
        copy = f' TEMPLATE "{template.rpartition("/")[2]}"' if template else ""
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        finally:
            admin.dispose()
        return f"{self.server}/{name}"

    def schedule(self, sim: Simulator, mix: str, accounts: int, work: Path) -> str:
        """The database where `stormer schedule` put the storm of `mix` for FAR."""
        key = (mix, accounts)
        if key not in self.scheduled:
            url = self.new()
            upgrade_database(url)
            root = work / f"scheduled-{mix}-{accounts}"
            storm = Storm(root, environment(sim, mix, accounts, root, url), claim_batch=1)
            done = storm.schedule(FAR.timestamp())
            out, _ = done.communicate(timeout=PATIENCE.total_seconds())
            assert done.returncode == 0, out
            self.scheduled[key] = url
        return self.scheduled[key]


def upgrade_database(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def environment(sim: Simulator, mix: str, accounts: int, root: Path, db_url: str) -> dict[str, str]:
    """Write the storm of `mix` at `root`; the environment its commands run in."""
    credentials = write_storm(root, sim.url, MIXES[mix], accounts)
    return {
        **os.environ,
        **credentials,
        "STORMER_DATABASE_URL": db_url,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
