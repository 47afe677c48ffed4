"""The status read model: what `status`, `report`, `doctor` and the watchdog read about a
storm's outbox in one consistent snapshot (counts by state, what fires next, live workers,
unknown outcomes, lateness). It only reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from stormer.outbox import schedule as outbox
from stormer.outbox.claims import expired_leases
from stormer.outbox.models import Outbox, State, require_aware
from stormer.outbox.workers import live_workers
from stormer.settings import STALE_AFTER

if TYPE_CHECKING:
    from stormer.outbox.claims import AnyRow

_t = cast(Table, Outbox.__table__)


# --- read models -------------------------------------------------------------------------------


def status_summary(
    *, engine: Engine, storm: str, now: datetime, stale_after: timedelta = STALE_AFTER
) -> dict[str, Any]:
    """What `status` and `report` show: counts by state, what fires next, live workers,
    items awaiting reconciliation, and lateness of the sent items.

    Lateness (`sent_at - fire_at`, seconds) must be ≥ 0 for every sent item: an item sent
    early is a bug, listed in `lateness["early"]` rather than hidden in the statistics.
    Instants are aware UTC datetimes; durations are seconds.
    """
    require_aware(now)
    with Session(engine) as session, session.begin():
        counts = outbox.counts(session=session, storm=storm)
        conn = session.connection()
        # Not dict(result): a Result has keys() (its column names), so dict() would index it.
        kinds = {  # noqa: C416
            kind: n
            for kind, n in conn.execute(
                select(_t.c.kind, func.count()).where(_t.c.storm == storm).group_by(_t.c.kind)
            )
        }
        todo = conn.execute(
            select(func.min(_t.c.fire_at)).where(
                _t.c.storm == storm, _t.c.state.in_((State.PENDING, State.STAGED, State.CLAIMED))
            )
        ).scalar()
        retry = conn.execute(
            select(func.min(_t.c.next_attempt_at)).where(
                _t.c.storm == storm, _t.c.state == State.FAILED
            )
        ).scalar()
        unknown = (
            conn.execute(
                select(_t.c.id)
                .where(_t.c.storm == storm, _t.c.state == State.SENDING, _t.c.lease_until.is_(None))
                .order_by(_t.c.id)
            )
            .scalars()
            .all()
        )
        sent = conn.execute(
            select(_t.c.id, _t.c.fire_at, _t.c.sent_at).where(
                _t.c.storm == storm, _t.c.state == State.SENT, _t.c.sent_at.is_not(None)
            )
        ).all()
    return {
        "storm": storm,
        "now": now,
        "counts": counts,
        "total": sum(counts.values()),
        "kinds": kinds,  # {"post": n, "reminder": n}
        "next_fire_at": todo,  # min() keeps the column's type: aware UTC
        "next_retry_at": retry,
        "workers": [
            asdict(w)
            for w in live_workers(engine=engine, storm=storm, now=now, stale_after=stale_after)
        ],
        "expired_leases": len(expired_leases(engine=engine, storm=storm, now=now)),
        "unknown_outcomes": list(unknown),
        "lateness": _lateness(sent),
    }


def _lateness(sent: Sequence[AnyRow]) -> dict[str, Any]:
    late = sorted(((r.sent_at - r.fire_at).total_seconds(), r.id) for r in sent)
    if not late:
        return {
            State.SENT: 0,
            "min_s": None,
            "p50_s": None,
            "p99_s": None,
            "max_s": None,
            "early": [],
        }
    seconds = [s for s, _ in late]
    return {
        State.SENT: len(late),
        "min_s": seconds[0],
        "p50_s": percentile(seconds, 0.50),
        "p99_s": percentile(seconds, 0.99),
        "max_s": seconds[-1],
        "early": [i for s, i in late if s < 0],
    }


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile `q` (0–1) of the sorted `ordered`: a value that actually
    occurred, not an interpolation. None when there is no value."""
    if not ordered:
        return None
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def published(*, session: Session, storm: str) -> set[str]:
    """The remote ids and permalinks of `storm`'s sent items: how `stormer impact` tells our
    posts from everyone else's."""
    found: set[str] = set()
    for remote_id, permalink in session.execute(
        select(_t.c.remote_id, _t.c.permalink).where(_t.c.storm == storm, _t.c.state == State.SENT)
    ):
        found.update(v for v in (remote_id, permalink) if v)
    return found
