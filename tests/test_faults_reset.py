"""The fault matrix, the network (issue 15, item 4): connections reset (a TCP RST) before and
after the request reached the platform, and connections refused, by a proxy between the
worker and the simulator (faults_proxy.py), on SQLite and PostgreSQL; counted as in
test_faults_http.py.

After a reset the worker cannot tell which it was: the request had left. A platform that can be
asked (Mastodon's Idempotency-Key, Bluesky's record key, X and Matrix reading back) says
whether the post is there, and it is sent once. Telegram and Discord cannot be asked: the
item is `unconfirmed`, with where to look — and the count shows whether it landed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from faults_count import instant, landed
from faults_proxy import POSTING, ResetProxy
from faults_run import CANNOT_ASK, run_storm, storm_folder
from timing import wait_until

from stormer.outbox.db import make_engine, upgrade


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def proxy(simulator: str) -> Iterator[ResetProxy]:
    running = ResetProxy(simulator)
    running.start()
    yield running
    running.stop()


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_connection_reset_at_t(
    tmp_path: Path,
    simulator: str,
    proxy: ResetProxy,
    engine,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    """The first post request of each platform from T has its connection reset: "before"
    the platform saw it (nothing created), or "after" it answered (the post exists)."""
    root = storm_folder(tmp_path, proxy.url, monkeypatch)
    run = run_storm(root, engine, simulator, at_t=lambda at: proxy.arm(when))
    assert sorted(proxy.applied) == sorted(f"{p}: {when}" for p in POSTING)
    run.tally.assert_promise(unconfirmed_on=CANNOT_ASK)
    assert run.tally.states == {"sent": 6, "unconfirmed": 2}, run.tally.summary()
    unconfirmed = ["discord/campaign-discord", "telegram/campaign-telegram"]
    if when == "before":
        assert sorted(run.tally.unconfirmed_not_landed) == unconfirmed
    else:
        assert sorted(run.tally.unconfirmed_landed) == unconfirmed


def test_every_platform_unreachable_at_t(
    tmp_path: Path,
    simulator: str,
    proxy: ResetProxy,
    engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Just before T the platforms become unreachable (nothing listens: connecting is
    refused) until T + 1 s. A refused connection proves the request never left, so it is
    sent again, even where the platform cannot be asked: every item lands once, late, and
    none is left `unconfirmed`."""
    root = storm_folder(tmp_path, proxy.url, monkeypatch)
    outage = timedelta(seconds=1)

    def unreachable(at: datetime) -> None:
        proxy.down()
        try:
            wait_until("the outage's end", lambda: datetime.now(UTC) >= at + outage, every=0.05)
        finally:
            proxy.up()

    run = run_storm(root, engine, simulator, at_t=unreachable)
    run.tally.assert_promise()
    assert run.tally.states == {"sent": 8}, run.tally.summary()
    received = [instant(p["received_at"]) for p in landed(simulator)]
    assert min(received) >= run.at + outage
    print(
        f"landed T+{(min(received) - run.at).total_seconds():.1f} to "
        f"T+{(max(received) - run.at).total_seconds():.1f} s"
    )
