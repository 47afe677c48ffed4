"""Where the outbox lives: the database URL, engines, and schema migrations (Alembic).

Only commands that touch the database import this module; it imports SQLAlchemy and, when
migrating, Alembic.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

import stormer
from stormer.errors import StormerError
from stormer.private import private_file

if TYPE_CHECKING:
    from alembic.config import Config

ENV_VAR = "STORMER_DATABASE_URL"
MIGRATIONS_DIR = Path(stormer.__file__).parent.parent / "migrations"

# How long a SQLite connection waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# A worker on another machine can lose the network to PostgreSQL in the middle of a
# transaction. Left to the defaults, its connection hangs for about 15 minutes (Linux's
# tcp_retries2) before it knows, and the server keeps that transaction's row locks until its
# keepalive finds the peer gone, two hours on: every other worker skips those items (SKIP
# LOCKED) and the storm passes without them. So the server ends a session idle inside a
# transaction for half a lease, and both ends give up on a peer that stops answering within
# seconds. stormer's transactions never wait on anything but the database (no request to a
# platform is made inside one), so a live worker is never cut off by these.
# Both ends of a connection: keepalive probes after 10 s idle, every 5 s, 3 unanswered
# ending it; and unacknowledged data for 20 s ending it.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 10, 5, 3
USER_TIMEOUT_MS = 20_000
PG_SESSION = {  # the server's side: SET on each new connection (not the startup `options`,
    # which PgBouncer refuses unless told to ignore them)
    "idle_in_transaction_session_timeout": "30s",
    "tcp_keepalives_idle": str(KEEPALIVE_IDLE_S),
    "tcp_keepalives_interval": str(KEEPALIVE_INTERVAL_S),
    "tcp_keepalives_count": str(KEEPALIVE_COUNT),
    "tcp_user_timeout": str(USER_TIMEOUT_MS),
}
PG_CLIENT_SOCKET = {  # the client's side: libpq's connection parameters
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": KEEPALIVE_IDLE_S,
    "keepalives_interval": KEEPALIVE_INTERVAL_S,
    "keepalives_count": KEEPALIVE_COUNT,
    "tcp_user_timeout": USER_TIMEOUT_MS,
}

# Rows (or ids) per statement: bounds memory, and keeps an `IN` list far below the bound
# parameter limits (SQLite 32,766; PostgreSQL 65,535).
CHUNK: Final = 5_000


def database_url(config_url: str | None, storm_root: Path) -> str:
    """The SQLAlchemy URL of the storm's database.

    Precedence: the `STORMER_DATABASE_URL` environment variable, then the storm config's URL,
    then `sqlite:///<storm_root>/stormer.db`. A relative SQLite path in the config is relative
    to the storm root (not to wherever the command runs); `postgresql://` selects psycopg 3.

    Raises:
        StormerError: the URL cannot be parsed.
    """
    env_url = os.environ.get(ENV_VAR)
    if env_url:
        return _normalize(env_url, ENV_VAR, root=None)
    if config_url:
        return _normalize(config_url, "the storm config", root=storm_root)
    default = URL.create("sqlite", database=str((storm_root / "stormer.db").absolute()))
    return default.render_as_string()


def _normalize(raw: str, origin: str, root: Path | None) -> str:
    try:
        url = make_url(raw)
    except ArgumentError:
        # Not echoed: a malformed URL may still contain a password.
        raise StormerError(f"the database URL from {origin} cannot be parsed") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if in_memory(url):
        raise StormerError(
            f"the database URL from {origin} is an in-memory SQLite database, lost when the "
            "command ends and never shared with the worker: write sqlite:///stormer.db"
        )
    if (
        root is not None
        and url.get_backend_name() == "sqlite"
        and url.database
        and url.database != ":memory:"
        and not url.database.startswith("file:")
    ):
        path = Path(url.database).expanduser()
        if not path.is_absolute():
            url = url.set(database=str((root / path).absolute()))
    return url.render_as_string(hide_password=False)


def in_memory(url: URL) -> bool:
    """An SQLite database that lives in one connection (`sqlite://`, `:memory:`, a
    `mode=memory` URI): an outbox there is gone before `stormer run` could read it."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or "mode=memory" in database
        or url.query.get("mode") == "memory"
    )


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout, foreign keys and real transactions,
    and its file is created owner-only (SQLite gives its -wal and -shm files the same mode):
    the outbox holds participants' contacts."""
    parsed = make_url(url)
    if (
        parsed.get_backend_name() == "sqlite"
        and parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        private_file(Path(parsed.database))
    postgres = parsed.get_backend_name() == "postgresql"
    # The URL's own parameters (`?keepalives_idle=…`) win over these.
    socket = {k: v for k, v in PG_CLIENT_SOCKET.items() if k not in parsed.query}
    engine = create_engine(url, connect_args=socket if postgres else {})
    if postgres:
        event.listen(engine, "connect", _postgres_on_connect, insert=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _postgres_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Outside any transaction, as SQLAlchemy's own recipe for SET on connect does.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        with dbapi_connection.cursor() as cursor:
            for name, value in PG_SESSION.items():
                cursor.execute(f"SET SESSION {name} = '{value}'")
    finally:
        dbapi_connection.autocommit = autocommit


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Take transaction control away from sqlite3: its legacy mode (no BEGIN before SELECT or DDL)
    # is going away in Python 3.16, and we want transactional migrations.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers (status) run while the dispatcher writes. synchronous stays FULL: a
        # "sending" row must survive a power cut, or the item could be sent twice.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front, waiting up to busy_timeout. A deferred BEGIN that
    # reads and then writes fails at once with "database is locked" if another process wrote in
    # between, and the outbox reads-then-writes everywhere (schedule, claim, record outcome).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(connection: Connection) -> Config:
    """An Alembic `Config` for stormer's migrations that runs them on `connection`.

    Raises:
        StormerError: the `migrations` folder is not next to the `stormer` package.
    """
    from alembic.config import Config  # only migrating commands pay for importing Alembic

    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise StormerError(
            f"database migrations not found in {MIGRATIONS_DIR}: stormer needs its source "
            "checkout (install it with `pip install -e .` from the repository)"
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the newest migration (`alembic upgrade head`), atomically."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")


def migrations_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration (False for an empty database)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        heads = set(ScriptDirectory.from_config(alembic_config(conn)).get_heads())
        return set(MigrationContext.configure(conn).get_current_heads()) == heads


def chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    """`ids` in lists of at most `CHUNK`, in order: one statement each."""
    it = iter(ids)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


def server_clock(engine: Engine) -> datetime | None:
    """The database server's clock now, which every worker of a storm shares; None for SQLite,
    whose "server" is this machine's own clock."""
    if engine.dialect.name != "postgresql":
        return None
    from sqlalchemy import func, select

    with engine.connect() as conn:
        # clock_timestamp(), not now(): now() is when the transaction began.
        value = conn.execute(select(func.clock_timestamp())).scalar_one()
    return cast(datetime, value).astimezone(UTC)
