"""A burst that never began loses nothing; one that began leaves unknown outcomes to reconcile;
and a stalled worker whose burst was taken over sends nothing (stormer.outbox.bursts), on
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select

from stormer.outbox import bursts, claims
from stormer.outbox.models import Burst
from tests.claims_helpers import BEFORE, LEASE, W1, W2, T, claim, ids, item, row, schedule, set_row

EXPIRED = BEFORE + LEASE + timedelta(seconds=1)  # W1's lease has run out: W2 recovers


def mark(engine: Engine, some: list[str], burst: str | None = "b1") -> list[str]:
    """W1 records its attempts half a second before T, as part of `burst`."""
    return claims.record_attempt(
        engine=engine, ids=some, worker=W1, now=T - timedelta(seconds=0.5), burst=burst
    )


def recover(engine: Engine) -> tuple[list[str], list[str]]:
    return claims.recover_expired(engine=engine, storm="gaza", now=EXPIRED, worker=W2)


def begin(engine: Engine, burst: str = "b1") -> bool:
    return bursts.begin(engine=engine, burst=burst, storm="gaza", worker=W1, now=T)


def test_a_worker_dead_before_its_burst_began_sent_nothing_and_its_items_go_out_again(
    engine: Engine,
) -> None:
    schedule(engine, [item(0), item(1)])
    set_row(engine, item(1).id, state="staged", staged_data={"media": ["42"]})
    claim(engine, W1)
    assert mark(engine, ids(2)) == ids(2)
    # W1 dies here, before T: its burst never began.
    assert recover(engine) == (sorted(ids(2)), [])
    for i, state in zip(ids(2), ("pending", "staged"), strict=True):
        got = row(engine, i)
        assert (got["state"], got["attempts"], got["lease_owner"], got["burst"]) == (
            state,
            0,  # the attempt never happened
            None,
            None,
        )
        assert got["error"] is None
    again = claim(engine, W2, now=EXPIRED)
    assert sorted(c.id for c in again) == sorted(ids(2))
    assert begin(engine) is False  # and W1, were it only stalled, may not send them


def test_a_burst_that_began_leaves_unknown_outcomes_to_reconcile(engine: Engine) -> None:
    schedule(engine, [item(0), item(1)])
    claim(engine, W1)
    mark(engine, ids(2))
    assert begin(engine) is True
    # W1 dies mid-burst: its requests may have landed.
    assert recover(engine) == ([], sorted(ids(2)))
    assert {row(engine, i)["state"] for i in ids(2)} == {"sending"}
    assert all(row(engine, i)["error"].startswith(claims.UNKNOWN_OUTCOME) for i in ids(2))
    assert claim(engine, W2, now=EXPIRED) == []  # never resent blindly


def test_items_marked_without_a_burst_stay_unknown_as_before(engine: Engine) -> None:
    """Rows marked `sending` before migration 0004 name no burst: nobody can tell."""
    schedule(engine, [item(0)])
    claim(engine, W1)
    mark(engine, ids(1), burst=None)
    assert recover(engine) == ([], ids(1))


def test_only_the_bursts_that_began_leave_unknown_outcomes(engine: Engine) -> None:
    schedule(engine, [item(i) for i in range(4)])
    claim(engine, W1)
    mark(engine, ids(4)[:2], burst="began")
    mark(engine, ids(4)[2:], burst="never")
    assert begin(engine, "began") is True
    assert recover(engine) == (sorted(ids(4)[2:]), sorted(ids(4)[:2]))
    with engine.connect() as conn:
        written = {
            r.burst_id: (r.worker, r.started_at is not None, r.abandoned_by)
            for r in conn.execute(select(Burst.__table__))
        }
    assert written == {"began": (W1, True, None), "never": (W1, False, W2)}


def race(engine: Engine, burst: str) -> tuple[bool, tuple[list[str], list[str]]]:
    """W1 beginning `burst` and W2 recovering it at the same moment, on two threads."""
    results: dict[str, Any] = {}
    go = threading.Barrier(2)

    def worker() -> None:
        go.wait()
        results["began"] = begin(engine, burst)

    def recovery() -> None:
        go.wait()
        results["recovered"] = recover(engine)

    threads = [threading.Thread(target=worker), threading.Thread(target=recovery)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results["began"], results["recovered"]


def test_a_begin_and_a_recovery_racing_for_one_burst_agree(engine: Engine) -> None:
    """Whichever writes the burst's row first wins, and the other sees it: each time, the
    worker sends iff the recovery found the burst begun (its items unknown, not released)."""
    for n in range(20):
        schedule(engine, [item(100 + n)])
        held = [c.id for c in claim(engine, W1, now=BEFORE)]  # with any released before
        marked = claims.record_attempt(
            engine=engine, ids=held, worker=W1, now=T - timedelta(seconds=0.5), burst=f"r{n}"
        )
        began, (released, unknown) = race(engine, f"r{n}")
        assert (released, unknown) == (([], sorted(marked)) if began else (sorted(marked), [])), n
