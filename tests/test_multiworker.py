"""Three workers on one PostgreSQL database share a storm; one is killed mid-burst. The
survivors take its items over: 0 duplicates, 0 lost, counted on the simulator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fixtures_workers import (
    EXTRA_ACCOUNTS,
    assert_nothing_lost_nothing_twice,
    kill_hard,
    outbox,
    set_t,
    slow_answers,
    start_workers,
    wait_for_the_burst,
)


@pytest.mark.postgres
def test_three_workers_one_killed_mid_burst(
    burst_storm: tuple[Path, dict[str, str]],
    simulator: str,
    pg_database: str,
) -> None:
    root, env = burst_storm
    env = {**env, "STORMER_DATABASE_URL": pg_database}
    start, workers = start_workers(env, root, 3, "--claim-batch", "8")
    try:
        at = set_t(env, root, start, workers)
        slow_answers(simulator)
        wait_for_the_burst(env, at, workers)
        in_flight = Counter(r.lease_owner for r in outbox(env) if r.state == "sending")
        kill_hard(workers[0])
        for w in workers[1:]:
            out, _ = w.communicate(timeout=120)
            assert w.returncode == 0, out
    finally:
        for w in workers:
            if w.poll() is None:
                kill_hard(w)
    assert sum(in_flight.values()) == 8 + EXTRA_ACCOUNTS  # the burst was in flight
    assert len(in_flight) >= 2, f"the workers did not share the storm: {in_flight}"
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    assert {r.platform for r in outbox(env) if r.state == "unconfirmed"} <= {"telegram", "discord"}
    assert states["sent"] + states["unconfirmed"] == 8 + EXTRA_ACCOUNTS
