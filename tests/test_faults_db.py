"""The fault matrix, the database (issue 15, item 4): the real PostgreSQL server stopped and
started again mid-burst, and unreachable at T; SQLite locked at T. One worker in this
process (faults_run.py), counted from the simulator's record against the outbox.

The rule that holds through all of them: a request leaves only after its attempt is durable
(`sending`), so a database that cannot be written at T holds the burst back — late, never
early, never unrecorded — and a burst whose outcomes cannot be written is reconciled with
each platform once the database is back."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from faults_count import instant, landed
from faults_run import CANNOT_ASK, SETTINGS, configure, rows, run_storm, storm_folder
from fixtures_db import PgServer
from sqlalchemy import Engine
from timing import wait_until

from stormer.outbox.db import make_engine, upgrade

DOWN = "the database does not answer"
BACK = "the database answers again"


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
    """Every attempt recorded, every request in flight (answers take 1.5–2.5 s), and the
    PostgreSQL server is stopped (`pg_ctl stop -m fast`: every connection cut); it comes back
    once the burst has failed to write its outcomes. The worker reconciles each item: found
    where the platform can be asked; Telegram and Discord `unconfirmed` (they did land)."""
    caplog.set_level(logging.INFO, logger="stormer")
    root = storm_folder(tmp_path, simulator, monkeypatch)
    assert pg_server.cluster is not None
    cluster = pg_server.cluster

    def restart_mid_burst(at: datetime) -> None:
        configure(simulator, latency_ms=[1500, 2500])
        wait_until(
            "every attempt recorded",
            lambda: {r.state for r in rows(pg_engine)} == {"sending"},
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
    run.tally.assert_promise(unconfirmed_on=CANNOT_ASK)
    assert run.tally.states == {"sent": 6, "unconfirmed": 2}, run.tally.summary()
    assert sorted(run.tally.unconfirmed_landed) == [
        "discord/campaign-discord",
        "telegram/campaign-telegram",
    ]
    told = assert_told_in_lines(caplog)
    assert any("8 request(s) left, but their outcomes could not be written" in m for m in told)
    print("told:", told)
