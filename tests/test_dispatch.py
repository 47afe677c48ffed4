"""The dispatcher end to end against the simulator: every post at its moment, never early,
exactly once — judged by the simulator's own receive times."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from example import example_against, schedule_storm
from sqlalchemy import select
from sqlalchemy.orm import Session
from timing import far_ahead, move_storm, run_worker_until

from stormer.dispatch.dispatcher import Dispatcher, Settings
from stormer.outbox.db import make_engine, upgrade
from stormer.outbox.models import Outbox

FAST = Settings(
    staging_window=timedelta(minutes=5),
    grace=timedelta(minutes=2),
    poll_seconds=0.5,
    lead_seconds=0.5,
)


@pytest.fixture
def storm_dir(tmp_path: Path, simulator: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    return example_against(tmp_path / "storm", simulator, monkeypatch)


def schedule_soon(storm_dir: Path, engine, ahead: timedelta):  # type: ignore[no-untyped-def]
    """Schedule the storm far ahead, then move T to `ahead` from now: loading and planning
    the storm, slow on a loaded machine, does not eat into the time before T (an item whose
    time has passed when it is scheduled is not added). Returns the storm and T."""
    start = far_ahead()
    storm = schedule_storm(storm_dir, engine, start)
    at = (datetime.now(UTC) + ahead).replace(microsecond=0)
    move_storm(engine, storm_dir, start, at)
    return replace(storm, at=at), at


async def stage_only(storm, engine) -> None:  # type: ignore[no-untyped-def]
    """Run a worker until its first pass has staged every item (or failed to), then stop it."""
    await run_worker_until(
        Dispatcher(storm, engine, settings=FAST),
        "staging",
        lambda: all(r.staged_at is not None or r.state == "failed" for r in rows(engine)),
    )


def rows(engine) -> list[Outbox]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        found = list(session.scalars(select(Outbox)))
        session.expunge_all()
        return found


def test_every_post_fires_at_its_moment_once(storm_dir: Path, simulator: str, db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        storm, at = schedule_soon(storm_dir, engine, timedelta(seconds=3))
        asyncio.run(
            asyncio.wait_for(
                Dispatcher(storm, engine, settings=FAST).run(until_done=True), timeout=60
            )
        )
        landed = httpx.get(f"{simulator}/_sim/posts").json()
        outbox = rows(engine)
        assert len(outbox) == 8
        for row in outbox:  # each item landed exactly once (Matrix images are extra events)
            same = [p for p in landed if p["platform"] == row.platform and p["text"] == row.text]
            assert len(same) == 1, (row.platform, row.state, row.error)
        received = [datetime.fromisoformat(p["received_at"].replace("Z", "+00:00")) for p in landed]
        assert min(received) >= at, "a post arrived before the storm's moment"
        # The burst leaves at T; or, if staging on a loaded machine ended later, at once then.
        ready = max([at] + [r.staged_at for r in outbox if r.staged_at is not None])
        assert max(received) - ready < timedelta(seconds=5)
        assert {r.state for r in outbox} == {"sent"}
        assert all(r.attempts == 1 and r.sent_at >= r.fire_at for r in outbox)
        assert {r.remote_id for r in outbox} <= {p["remote_id"] for p in landed}
    finally:
        engine.dispose()


def test_a_bad_credential_is_reported_at_staging_not_at_t(
    storm_dir: Path, simulator: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FPS_X_TOKEN", "invalid-x")
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        at = (datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=0)
        storm = schedule_storm(storm_dir, engine, at)

        asyncio.run(stage_only(storm, engine))  # long before T
        by_platform = {r.platform: r for r in rows(engine)}
        x = by_platform["x"]
        assert x.state == "failed" and "staging" in x.error and "credentials" in x.error
        assert httpx.get(f"{simulator}/_sim/posts").json() == []  # nothing sent early
        others = [r for r in rows(engine) if r.platform != "x"]
        assert {r.state for r in others} <= {"pending", "staged"}  # released on stop
    finally:
        engine.dispose()


def test_a_rate_limited_staging_waits_for_the_platforms_retry_after(
    storm_dir: Path, simulator: str, db_url: str
) -> None:
    # A Bluesky login window is 5 minutes: retrying staging every minute only collects 429s.
    httpx.post(
        f"{simulator}/_sim/config", json={"rate_limit": {"mastodon": {"limit": 0, "window_s": 300}}}
    ).raise_for_status()
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        at = (datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=0)
        storm = schedule_storm(storm_dir, engine, at)

        started = datetime.now(UTC)
        asyncio.run(stage_only(storm, engine))
        mastodon = [r for r in rows(engine) if r.platform == "mastodon"]
        assert mastodon and {r.state for r in mastodon} == {"failed"}
        for r in mastodon:
            assert r.next_attempt_at is not None
            assert r.next_attempt_at >= started + timedelta(seconds=240), r.next_attempt_at
    finally:
        engine.dispose()


def test_an_account_with_several_posts_at_once_is_paced(
    storm_dir: Path, simulator: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stormer.channels.telegram import Telegram

    # Telegram's real pace (20 a minute per group) in miniature: 2 per 0.6 s.
    monkeypatch.setattr(Telegram, "pace", (2, 0.6))
    config = storm_dir / "config.toml"
    config.write_text(config.read_text().replace("posts_per_account = 1", "posts_per_account = 3"))
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        storm, at = schedule_soon(storm_dir, engine, timedelta(seconds=3))
        asyncio.run(
            asyncio.wait_for(Dispatcher(storm, engine, settings=FAST).run(until_done=True), 60)
        )
        landed = httpx.get(f"{simulator}/_sim/posts", params={"platform": "telegram"}).json()
        received = sorted(
            datetime.fromisoformat(p["received_at"].replace("Z", "+00:00")) for p in landed
        )
        left = sorted(r.sent_at for r in rows(engine) if r.platform == "telegram")
        assert len(received) == 3 and received[0] >= at
        assert (left[1] - left[0]).total_seconds() < 0.5  # two fit in the window
        # The third waits for the window: it leaves the client 0.6 s after the first did, and
        # so reaches the server no sooner. Measured from when the first left, not from when
        # it arrived: a loaded machine may delay one arrival more than another. (The send
        # times are read just after the pacer's own clock: a few ms of slack.)
        assert (left[2] - left[0]).total_seconds() >= 0.55
        assert (received[2] - left[0]).total_seconds() >= 0.55
        assert {r.state for r in rows(engine)} == {"sent"}
    finally:
        engine.dispose()


def test_the_cyclic_collector_is_paused_for_a_burst_and_back_after() -> None:
    import gc

    from stormer.dispatch.firing import cyclic_gc_paused

    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():  # two instants close together: the later end resumes it
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("a burst that fails still gives the collector back")
    assert gc.isenabled()
    gc.disable()  # turned off by someone else: left off
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_posts_of_one_bluesky_account_at_one_instant_each_land_under_their_own_key(
    storm_dir: Path, db_url: str, simulator: str
) -> None:
    """posts_per_account = 3 with post_interval 0: three records of one account at T. The
    plan's seq goes through the outbox to staging, and each draws its own record key."""
    from stormer.channels.bluesky import record_key

    config = storm_dir / "config.toml"
    config.write_text(config.read_text().replace("posts_per_account = 1", "posts_per_account = 3"))
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        storm, at = schedule_soon(storm_dir, engine, timedelta(seconds=3))
        asyncio.run(
            asyncio.wait_for(Dispatcher(storm, engine, settings=FAST).run(until_done=True), 60)
        )
        ours = [r for r in rows(engine) if r.account == "campaign-bluesky"]
        assert sorted(r.seq for r in ours) == [0, 1, 2]
        keys = {r.staged_data["rkey"] for r in ours if r.staged_data}
        assert keys == {record_key(r.id, at, r.seq) for r in ours} and len(keys) == 3
        assert {r.state for r in ours} == {"sent"}
        landed = httpx.get(f"{simulator}/_sim/posts", params={"platform": "bluesky"}).json()
        assert sorted(k for p in landed if (k := p["remote_id"].rsplit("/", 1)[-1]) in keys) == (
            sorted(keys)
        )
    finally:
        engine.dispose()


def test_stopping_mid_pass_lets_the_pass_finish_without_a_traceback(
    storm_dir: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """APScheduler cancels the jobs it runs when it shuts down, and logs each with a
    traceback (seen on `run`'s live view under load): a pass is the worker's own task, and
    finishes before the worker stops. What it claimed is staged, then released."""
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        at = (datetime.now(UTC) + timedelta(minutes=3)).replace(microsecond=0)
        storm = schedule_storm(storm_dir, engine, at)  # within FAST's staging window
        dispatcher = Dispatcher(storm, engine, settings=FAST)

        async def stop_mid_pass() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(dispatcher.run(stop=stop))
            while not dispatcher._sync_lock.locked():  # the first pass is under way
                assert not task.done()
                await asyncio.sleep(0)
            stop.set()
            await task

        with caplog.at_level(logging.WARNING):
            asyncio.run(asyncio.wait_for(stop_mid_pass(), timeout=120))
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert {r.state for r in rows(engine)} == {"staged"}  # staged, none left claimed
    finally:
        engine.dispose()
