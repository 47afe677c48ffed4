"""Three workers on one PostgreSQL database share a storm; one is killed mid-burst. The
survivors take its items over: 0 duplicates, 0 lost, counted on the simulator."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from test_restart import (
    EXTRA_ACCOUNTS,
    assert_nothing_lost_nothing_twice,
    kill_hard,
    outbox,
    schedule,
    storm,
    worker,
)

__all__ = ["storm"]  # the fixture, shared with test_restart


@pytest.mark.postgres
def test_three_workers_one_killed_mid_burst(
    storm,
    simulator: str,  # type: ignore[no-untyped-def]
    pg_database: str,
) -> None:
    root, env = storm
    env = {**env, "STORMER_DATABASE_URL": pg_database}
    httpx.post(f"{simulator}/_sim/config", json={"latency_ms": [300, 900]}).raise_for_status()
    at = (datetime.now(UTC) + timedelta(seconds=12)).replace(microsecond=0)
    schedule(env, root, at)
    workers = [worker(env, root, "--claim-batch", "8") for _ in range(3)]
    try:
        while datetime.now(UTC) < at + timedelta(milliseconds=400):
            time.sleep(0.02)
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
