"""The fault matrix, the network (issue 15, item 4): connections reset (a TCP RST) before and
after the request reached the platform, by a proxy between the worker and the simulator
(faults_proxy.py), on SQLite and PostgreSQL; counted as in test_faults_http.py.

Either way the worker cannot tell which it was: the request had left. A platform that can be
asked (Mastodon's Idempotency-Key, Bluesky's record key, X and Matrix reading back) says
whether the post is there, and it is sent once. Telegram and Discord cannot be asked: the
item is `unconfirmed`, with where to look — and the count shows whether it landed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_proxy import POSTING, ResetProxy
from faults_run import CANNOT_ASK, run_storm, storm_folder

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
