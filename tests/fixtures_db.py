"""Fixtures: a throwaway PostgreSQL server, and `db_url` and `engine` over both backends.

The PostgreSQL server is started by the suite itself (a fresh clone and CI have none running):
`initdb` into a temporary folder, `pg_ctl start` on a free port, and `pg_ctl stop` at the end
(killing the postmaster by its pid if that fails). Under pytest-xdist each worker starts its
own; each test gets a database of its own.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from not_run import not_run
from ports import free_port

if TYPE_CHECKING:
    # Imported inside the fixtures: tests that need no database don't pay for SQLAlchemy.
    from sqlalchemy import Engine

PG_FALLBACK_BINDIRS = ("/usr/lib/postgresql/15/bin",)


@dataclass
class PgServer:
    """A running throwaway PostgreSQL server (trust auth, superuser `postgres`)."""

    port: int
    admin: Engine  # connected to the `postgres` database, AUTOCOMMIT
    # Its data folder and commands: a test may stop the real server and start it again.
    cluster: _PgCluster | None = None
    host: str = "127.0.0.1"  # the address it listens on (tests/lan.py: one on a test LAN)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"


@dataclass
class _PgCluster:
    """The server's data folder and the commands that drive it."""

    bindir: Path
    workdir: Path
    as_user: list[str]  # initdb and pg_ctl refuse to run as root: `runuser -u postgres --`
    listen: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def run(self, tool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, str(self.bindir / tool), *map(str, args)],
            capture_output=True,
            text=True,
            check=False,
        )

    def start(self, port: int) -> bool:
        # Durability is pointless for a throwaway server; turning it off keeps tests fast.
        options = (
            f"-p {port} -k {self.workdir} -c listen_addresses={self.listen} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        return (
            self.run(
                "pg_ctl",
                "-D",
                self.data,
                "-o",
                options,
                "-l",
                self.workdir / "log",
                "-w",
                "-t",
                "30",
                "start",
            ).returncode
            == 0
        )

    def stop(self) -> None:
        """`pg_ctl stop`; if that fails, kill the postmaster by the pid it wrote down."""
        if self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop").returncode == 0:
            return
        pidfile = self.data / "postmaster.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text().split("\n", 1)[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown; the backends follow

    def log(self) -> str:
        log = self.workdir / "log"
        return log.read_text(errors="replace") if log.exists() else ""


def _pg_bindir() -> Path | None:
    candidates: list[str] = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    candidates += PG_FALLBACK_BINDIRS
    for bindir in candidates:
        if bindir and (Path(bindir) / "initdb").is_file() and (Path(bindir) / "pg_ctl").is_file():
            return Path(bindir)
    return None


def _unavailable(reason: str) -> NoReturn:
    not_run("PostgreSQL", reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """Start a PostgreSQL server for this test session (this xdist worker) and stop it after."""
    with throwaway_server() as server:
        yield server


@contextlib.contextmanager
def throwaway_server(listen: str = "127.0.0.1", trusted: str | None = None) -> Iterator[PgServer]:
    """A new PostgreSQL server listening on `listen`, trusting the loopback and, if given,
    the clients of the network `trusted` (e.g. "10.213.7.0/24"); stopped and deleted after."""
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable(
            "no initdb/pg_ctl (looked in `pg_config --bindir` and "
            f"{', '.join(PG_FALLBACK_BINDIRS)}); install postgresql-15"
        )
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no `postgres` user to run the server as")
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        if not Path(runuser).is_file():
            _unavailable("running as root and `runuser` (util-linux) is missing")
        as_user = [runuser, "-u", "postgres", "--"]

    # Not pytest's tmp_path: its parents are private to root, and unix socket paths must be short.
    cluster = _PgCluster(bindir, Path(tempfile.mkdtemp(prefix="stormer-pg-")), as_user, listen)
    try:
        if as_user:
            os.chown(cluster.workdir, owner.pw_uid, owner.pw_gid)
        init = cluster.run(
            "initdb",
            "-D",
            cluster.data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if init.returncode != 0:
            pytest.fail(f"initdb failed:\n{init.stdout}\n{init.stderr}", pytrace=False)
        if trusted:
            # initdb's pg_hba.conf trusts only the loopback and the socket.
            with (cluster.data / "pg_hba.conf").open("a", encoding="utf-8") as hba:
                hba.write(f"host all all {trusted} trust\n")
        # Another process may take the free port before the server binds it: try a few.
        port = next((p for p in (free_port() for _ in range(3)) if cluster.start(p)), None)
        if port is None:
            pytest.fail(f"pg_ctl start failed:\n{cluster.log()}", pytrace=False)
        from sqlalchemy import create_engine, pool

        admin = create_engine(
            f"postgresql+psycopg://postgres@{listen}:{port}/postgres",
            isolation_level="AUTOCOMMIT",
            poolclass=pool.NullPool,
        )
        try:
            yield PgServer(port=port, admin=admin, cluster=cluster, host=listen)
        finally:
            admin.dispose()
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(cluster.workdir, ignore_errors=True)


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    from sqlalchemy import text

    name = f"t_{uuid.uuid4().hex}"
    with pg_server.admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield pg_server.url(name)
    with pg_server.admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stormer.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a new database migrated to the newest schema, once per backend."""
    from stormer.outbox.db import make_engine, upgrade

    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()
