"""kill -9 of the worker at any point, then a restart: nothing lost, nothing twice — counted
on the simulator's side."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fixtures_workers import (
    EXTRA_ACCOUNTS,
    ITEMS,
    assert_nothing_lost_nothing_twice,
    count_staged,
    count_states,
    finish,
    kill_hard,
    outbox,
    schedule,
    set_t,
    slow_answers,
    staging_time,
    start_workers,
    wait_for_the_burst,
)

from stormer.outbox import claims
from stormer.outbox.db import make_engine


def test_kill_before_t_then_restart(
    burst_storm: tuple[Path, dict[str, str]], simulator: str
) -> None:
    root, env = burst_storm
    start, first = start_workers(env, root, 1)
    at = set_t(env, root, start, first)
    kill_hard(first[0])
    # Killed when everything was staged and no attempt recorded yet.
    assert count_staged(env) == ITEMS
    assert not httpx.get(f"{simulator}/_sim/posts").json()
    finish(env, root)
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    assert states == Counter({"sent": 8 + EXTRA_ACCOUNTS})
    assert all(r.attempts == 1 for r in outbox(env))


def test_kill_during_the_burst_then_restart(
    burst_storm: tuple[Path, dict[str, str]], simulator: str
) -> None:
    root, env = burst_storm
    start, first = start_workers(env, root, 1)
    at = set_t(env, root, start, first)
    slow_answers(simulator)
    wait_for_the_burst(env, at, first)
    kill_hard(first[0])
    # Killed mid-burst: every attempt recorded, requests in flight, no outcome written yet.
    assert Counter(r.state for r in outbox(env)) == Counter({"sending": 8 + EXTRA_ACCOUNTS})
    finish(env, root)
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    # Only platforms that cannot be asked (Telegram, Discord webhooks) may stay unconfirmed.
    unconfirmed = [r.platform for r in outbox(env) if r.state == "unconfirmed"]
    assert set(unconfirmed) <= {"telegram", "discord"}
    assert states["sent"] + states["unconfirmed"] == 8 + EXTRA_ACCOUNTS


@pytest.mark.parametrize(
    ("burst", "ends"),
    [
        ("never-began", Counter({"sent": ITEMS})),
        # Marked before migration 0004, with no burst: nobody can tell whether it began, so
        # what cannot be asked stays unconfirmed; what can is reconciled, not before T.
        (None, Counter({"sent": ITEMS - 2, "unconfirmed": 2})),
    ],
)
def test_killed_after_recording_the_attempts_and_before_t_nothing_is_lost(
    burst_storm: tuple[Path, dict[str, str]], simulator: str, burst: str | None, ends: Counter[str]
) -> None:
    """The worker marked its burst `sending` (half a second before T) and died before its
    first request: its burst never began, so the next worker sends every item, Telegram and
    Discord included, instead of leaving them unconfirmed."""
    root, env = burst_storm
    at = (datetime.now(UTC) + staging_time() + timedelta(seconds=5)).replace(microsecond=0)
    schedule(env, root, at)
    engine = make_engine(env["STORMER_DATABASE_URL"])
    try:
        held = claims.claim_due(
            engine=engine,
            storm=outbox(env)[0].storm,
            worker="dead:1",
            now=datetime.now(UTC),
            horizon=timedelta(hours=1),
            limit=ITEMS,
            lease=timedelta(seconds=3),
        )
        marked = claims.record_attempt(
            engine=engine,
            ids=[c.id for c in held],
            worker="dead:1",
            now=datetime.now(UTC),
            burst=burst,
        )
    finally:
        engine.dispose()
    assert len(marked) == ITEMS and count_states(env) == Counter({"sending": ITEMS})
    finish(env, root)
    assert assert_nothing_lost_nothing_twice(simulator, env, at) == ends
    if burst is not None:
        assert all(r.attempts == 1 for r in outbox(env))  # the dead worker's taken back
    else:
        assert {r.platform for r in outbox(env) if r.state == "unconfirmed"} == {
            "telegram",
            "discord",
        }
