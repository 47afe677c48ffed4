"""The fault matrix, the database (issue 15, item 4): the real PostgreSQL server stopped and
started again mid-burst, and unreachable at T; SQLite locked at T, and its disk full (a
tmpfs filled to the last byte). One worker in this process (faults_run.py), counted from the
simulator's record against the outbox; and what the organizer is told.

The rule that holds through all of them: a request leaves only after its attempt is durable
(`sending`), so a database that cannot be written at T holds the burst back — late, never
early, never unrecorded — and a burst whose outcomes cannot be written keeps them and
writes them once the database is back."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from example import CREDENTIALS, copy_example
from faults_count import instant, landed
from faults_run import (
    SETTINGS,
    configure,
    rows,
    run_storm,
    schedule_far_ahead,
    storm_folder,
)
from fixtures_db import PgServer
from sqlalchemy import Engine, select
from timing import PATIENCE, far_ahead, wait_until

from stormer.outbox.db import make_engine, upgrade
from stormer.outbox.models import Burst
from stormer.timezones import iso_utc

DOWN = "the database cannot be used"
BACK = "the database can be used again"


@pytest.fixture
def pg_engine(pg_database: str) -> Iterator[Engine]:
    eng = make_engine(pg_database)
    upgrade(eng)
    yield eng
    eng.dispose()


def said(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records)


def organizer_was_told(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the worker said at WARNING and above: what `stormer run` shows the organizer."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def assert_told_in_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The outage was told once when it began and once when it ended, each in a line: no
    traceback, no line repeated at every pass."""
    told = organizer_was_told(caplog)
    assert [r for r in caplog.records if r.exc_info and r.levelno >= logging.WARNING] == []
    assert sum(DOWN in m for m in told) == 1, told
    assert sum(BACK in m for m in told) == 1, told
    return told


def restart(server: PgServer) -> None:
    assert server.cluster is not None
    assert server.cluster.start(server.port), server.cluster.log()[-3000:]


@pytest.mark.postgres
def test_postgresql_restarted_mid_burst(
    tmp_path: Path,
    simulator: str,
    pg_server: PgServer,
    pg_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The burst began, every request is in flight (answers take 1.5–2.5 s), and the
    PostgreSQL server is stopped (`pg_ctl stop -m fast`: every connection cut); it comes back
    once the burst has failed to write its outcomes. The worker keeps the outcomes it knows
    and writes them once the server answers: every item `sent`, Telegram and Discord too."""
    caplog.set_level(logging.INFO, logger="stormer")
    root = storm_folder(tmp_path, simulator, monkeypatch)
    assert pg_server.cluster is not None
    cluster = pg_server.cluster

    def restart_mid_burst(at: datetime) -> None:
        configure(simulator, latency_ms=[1500, 2500])
        wait_until(
            "every attempt recorded and the burst begun",
            lambda: {r.state for r in rows(pg_engine)} == {"sending"} and began(pg_engine),
            seen=lambda: sorted(r.state for r in rows(pg_engine)),
        )
        cluster.stop()
        try:
            wait_until(
                "the burst to fail writing its outcomes",
                lambda: said(caplog, "but their outcomes could not be written"),
                seen=lambda: organizer_was_told(caplog),
            )
            configure(simulator, latency_ms=[0, 0])
        finally:
            restart(pg_server)

    run = run_storm(root, pg_engine, simulator, at_t=restart_mid_burst)
    run.tally.assert_promise()
    assert run.tally.states == {"sent": 8}, run.tally.summary()
    told = assert_told_in_lines(caplog)
    assert any("8 request(s) left, but their outcomes could not be written" in m for m in told)
    print("told:", told)


def began(engine: Engine) -> bool:
    """Whether a burst has recorded that it began (its requests may be leaving)."""
    with engine.connect() as conn:
        return (
            conn.execute(select(Burst.started_at).where(Burst.started_at.is_not(None))).first()
            is not None
        )


def hold_until(moment: datetime) -> None:
    """Wait until `moment` (the fault's chosen length), polling: no sleep that load stretches
    into a failure, only into a longer fault."""
    wait_until(f"{moment}", lambda: datetime.now(UTC) >= moment, every=0.05)


@pytest.mark.postgres
@pytest.mark.parametrize("back", ["within the grace", "after the grace"])
def test_postgresql_unreachable_at_t(
    tmp_path: Path,
    simulator: str,
    pg_server: PgServer,
    pg_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    back: str,
) -> None:
    """The server stops once everything is staged and stays down until T + 3 s (grace 2 min)
    or T + 5 s (grace 4 s). Nothing fires while it is down: no attempt can be recorded, and
    no request leaves unrecorded. Back within the grace, every item goes then, late, once;
    after it, every item is marked missed and nothing is sent late. Either way the organizer
    reads one line when it went down, one for the burst held back, one when it came back."""
    caplog.set_level(logging.INFO, logger="stormer")
    root = storm_folder(tmp_path, simulator, monkeypatch)
    assert pg_server.cluster is not None
    cluster = pg_server.cluster
    late = timedelta(seconds=3 if back == "within the grace" else 5)
    settings = (
        SETTINGS if back == "within the grace" else replace(SETTINGS, grace=timedelta(seconds=4))
    )

    def down_at_t(at: datetime) -> None:
        cluster.stop()
        try:
            hold_until(at + late)
            assert said(caplog, "was held back"), organizer_was_told(caplog)
        finally:
            restart(pg_server)

    run = run_storm(root, pg_engine, simulator, at_t=down_at_t, settings=settings)
    run.tally.assert_promise()
    told = assert_told_in_lines(caplog)
    posts = landed(simulator)
    if back == "within the grace":
        assert run.tally.states == {"sent": 8}, run.tally.summary()
        assert min(instant(p["received_at"]) for p in posts) >= run.at + late
    else:
        assert run.tally.states == {"missed": 8}, run.tally.summary()
        assert posts == []
        assert any("8 item(s) MISSED" in m for m in told), told
    print("told:", told)


SQLITE_HELD = timedelta(seconds=3)  # how long past T a SQLite cell keeps the outbox unwritable


def sent_late_on_sqlite(
    root: Path, path: Path, simulator: str, at_t: Callable[[datetime], None]
) -> None:
    """Run the storm on a SQLite outbox at `path`, `at_t` keeping it unwritable from T until
    T + SQLITE_HELD: every item must be sent once, none before then."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    try:
        run = run_storm(root, engine, simulator, at_t=at_t)
    finally:
        engine.dispose()
    run.tally.assert_promise()
    assert run.tally.states == {"sent": 8}, run.tally.summary()
    assert min(instant(p["received_at"]) for p in landed(simulator)) >= run.at + SQLITE_HELD


def test_sqlite_locked_at_t(
    tmp_path: Path,
    simulator: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another process holds SQLite's write lock from before T to T + 3 s (a `sqlite3` shell
    left inside a transaction, a backup tool): SQLite's stand-in for a database that does
    not answer. The worker's writes wait for it (busy_timeout, 30 s): the attempts are
    recorded once the lock is released, and the burst goes then — late, never early, once.
    Within the busy timeout the worker says nothing of the lock: the burst is only late."""
    caplog.set_level(logging.INFO, logger="stormer")
    root = storm_folder(tmp_path, simulator, monkeypatch)
    path = tmp_path / "stormer.db"

    def locked_at_t(at: datetime) -> None:
        other = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            other.execute("BEGIN EXCLUSIVE")
            hold_until(at + SQLITE_HELD)
            assert attempts_read_only(path) == {0}, "an attempt was recorded while locked"
            other.execute("ROLLBACK")
        finally:
            other.close()

    sent_late_on_sqlite(root, path, simulator, locked_at_t)
    # Held longer than the test's 3 s leases, the worker lost its claims and took them again.
    assert [r for r in caplog.records if r.exc_info] == []
    print("told:", organizer_was_told(caplog))


def attempts_read_only(path: Path) -> set[int]:
    """The items' attempts, read by a reader, which WAL lets in while the write lock is held."""
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {n for (n,) in reader.execute("SELECT attempts FROM outbox")}
    finally:
        reader.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs, mounted for the test: a filesystem that really fills up (ENOSPC), as
    the organizer's disk does. Mounting needs root (CI runs the suite as root in its
    container); elsewhere the test is skipped, saying so."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("the disk-full cell mounts a tmpfs, which needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Fill `disk` to the last byte; returns the filler, whose removal frees it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1):  # big blocks, then the last bytes one by one
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)
    return filler


def test_sqlite_disk_full_at_t(
    tmp_path: Path,
    simulator: str,
    small_disk: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The disk holding the outbox fills up once everything is staged, until T + 3 s: no
    attempt can be recorded (or the claims run out, their renewals unwritten), so nothing
    fires; once there is room again, every item goes, late, once. The organizer reads one
    line when it began ("database or disk is full") and one when it ended; the outbox is
    whole (integrity_check)."""
    caplog.set_level(logging.INFO, logger="stormer")
    root = storm_folder(tmp_path, simulator, monkeypatch)
    path = small_disk / "stormer.db"

    def full_at_t(at: datetime) -> None:
        filler = fill(small_disk)
        try:
            hold_until(at + SQLITE_HELD)
        finally:
            filler.unlink()

    sent_late_on_sqlite(root, path, simulator, full_at_t)
    told = assert_told_in_lines(caplog)
    assert any("database or disk is full" in m for m in told), told
    assert integrity(path) == "ok"
    print("told:", told)


def test_stormer_schedule_on_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    """`stormer schedule` with the outbox on a full disk: one line saying so (no traceback),
    a non-zero exit, and no half-written outbox; with room again, the same command works."""
    root = copy_example(tmp_path / "storm", at=iso_utc(far_ahead()))
    env = {
        **os.environ,
        **CREDENTIALS,
        "FPS_DISCORD_WEBHOOK_URL": "https://discord.example/api/webhooks/7/tok-d",
        "STORMER_DATABASE_URL": f"sqlite:///{small_disk / 'stormer.db'}",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }

    def schedule() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stormer", "schedule", "--storm", str(root)],
            env=env,
            capture_output=True,
            text=True,
            timeout=PATIENCE.total_seconds(),
            check=False,
        )

    filler = fill(small_disk)
    full = schedule()
    print("told:", full.stderr)
    assert full.returncode == 2, full.stdout + full.stderr
    assert "Traceback" not in full.stdout + full.stderr
    (line,) = full.stderr.strip().splitlines()
    assert "database or disk is full" in line and "free" in line, line
    filler.unlink()
    done = schedule()
    assert done.returncode == 0, done.stdout + done.stderr
    assert integrity(small_disk / "stormer.db") == "ok"


def integrity(path: Path) -> str:
    check = sqlite3.connect(path)
    try:
        return str(check.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        check.close()


def test_a_full_database_is_told_as_such_where_no_disk_can_be_filled(tmp_path: Path) -> None:
    """The same SQLITE_FULL without root: SQLite's own cap on the database's pages (PRAGMA
    max_page_count, per connection) stands in for the disk. It only bounds the main file
    (not the WAL, not rewritten pages), so it cannot stand in for the disk at T, where the
    worker only updates rows: the cells above mount a real filesystem. Scheduling inserts
    rows: refused whole, told as a full disk, the outbox as it was."""
    from sqlalchemy import event, func, select
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from stormer.cli import unexpected
    from stormer.outbox.models import Outbox

    root = copy_example(tmp_path / "storm", at=iso_utc(far_ahead()))
    path = tmp_path / "stormer.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        engine.dispose()
        event.listen(
            engine,
            "connect",
            lambda dbapi, _: dbapi.execute(f"PRAGMA max_page_count = {pages}"),
        )
        with pytest.raises(OperationalError) as full:
            schedule_far_ahead(root, engine)
        message = unexpected(full.value)
        assert "database or disk is full" in message and "free space" in message, message
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(Outbox)) == 0
    finally:
        engine.dispose()
    assert integrity(path) == "ok"
