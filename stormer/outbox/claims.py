"""Claims, leases and outcomes: how dispatchers take outbox items and record what happened.

Never early, never twice, never lost — this module is where that is decided; the dispatcher
only calls it. Every function owns one short transaction (it takes an `engine`) and decides
by what the row holds at write time, never by what was read before.

The contract, in the order the dispatcher calls it:

1. `mark_missed` first: an item more than `grace` past its time is `missed`, not sent late.
2. `claim_due` takes sendable items (`pending`, `staged`, `failed` whose retry time has come)
   up to `horizon` ahead, as `claimed` with a lease (`lease_owner`, `lease_until`). Claiming
   before T is intended: the burst is prepared ahead. The lease must outlast the wait for T
   and the burst; `renew` extends it. A `ClaimedItem` holds all the hot path needs.
3. `mark_staged` (`mark_staged_many` for a batch) stores what staging produced (media ids…),
   if the plan did not change.
4. `record_attempt` marks `sending` just before the requests leave, and returns the ids it
   marked: only those may be sent (a lost or expired lease is not marked, so not sent).
5. `record_outcomes` writes the results in one batch after the burst. `sent` is final.
6. `release` gives unsent claims back on a clean shutdown.

Recovery (`recover_expired`, by any worker): an expired lease on a `claimed` item (never
sent) is released. An expired lease on a `sending` item is an *unknown outcome*: the request
may have landed. It is NOT made sendable: it stays `sending` with its lease cleared
(`lease_until` NULL; `lease_owner` kept, so the sender's own late outcome still lands) and
`error` starting with `UNKNOWN_OUTCOME`. The dispatcher takes such items with
`claim_unknown`, asks the platform (Mastodon Idempotency-Key within an hour of
`first_attempt_at`, Matrix transaction id, Bluesky record key, X read-back), and records
`sent` (it landed), `unconfirmed` (cannot know) or `failed` with a retry time (it did not
land); only then can it be sent again.

The lease is live only while `lease_until` is set. After an outcome (or an unknown one),
`lease_owner` is kept as the worker that sent the item; a released claim clears it.

On PostgreSQL, claims use `FOR UPDATE SKIP LOCKED` so several workers share one outbox; on
SQLite every transaction starts with `BEGIN IMMEDIATE` (stormer.db), so there is one writer
at a time and read-then-write is atomic. Batches of ids are read by primary key alone, with
states filtered in Python: SQLite's planner, given `id IN (...) AND state = ...`, walks the
state index instead (several times slower).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from sqlalchemy import Table, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.engine import Connection, Engine

from stormer.outbox import bursts
from stormer.outbox.db import chunks
from stormer.outbox.models import (
    CLAIMABLE,
    HELD,
    OUTCOMES,
    Outbox,
    State,
    UTCDateTime,
    require_aware,
)
from stormer.queue import Kind

if TYPE_CHECKING:
    from typing import TypeAlias

    from sqlalchemy.engine import Row

    AnyRow: TypeAlias = Row[*tuple[Any, ...]]

UNKNOWN_OUTCOME: Final = "lease expired: outcome unknown, reconcile before retry"

_t = cast(Table, Outbox.__table__)
_ITEM_COLUMNS = (
    _t.c.id,
    _t.c.kind,
    _t.c.platform,
    _t.c.account,
    _t.c.fire_at,
    _t.c.lang,
    _t.c.text,
    _t.c.media,
    _t.c.payload,
    _t.c.content_hash,
    _t.c.idempotency_key,
    _t.c.attempts,
    _t.c.claimed_from,
    _t.c.state,
    _t.c.staged_data,
    _t.c.lease_until,
    _t.c.seq,
)


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    """Everything needed to send one claimed item, so the hot path never reads the database.

    `state_before` is the state it was claimed from (`pending`, `staged`, `failed`; `sending`
    from `claim_unknown`). `staged_data` is None when the item was claimed as `pending`: the
    plan changed since staging (or it was never staged), so stage it again.
    """

    id: str
    kind: Kind
    platform: str
    account: str
    fire_at: datetime
    lang: str
    text: str
    media: list[dict[str, Any]]
    payload: dict[str, Any]
    content_hash: str
    idempotency_key: str | None
    attempts: int
    state_before: str
    staged_data: dict[str, Any] | None
    lease_until: datetime
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one item. `at` is stored as `sent_at` for `sent` (so it should be
    when the request left, or the platform's creation time: lateness is `sent_at - fire_at`).
    `failed` needs `next_attempt_at`, when it may be claimed again."""

    id: str
    state: State
    at: datetime
    remote_id: str | None = None
    permalink: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.state not in OUTCOMES:
            raise ValueError(
                f"outcome {str(self.state)!r} is not one of {sorted(map(str, OUTCOMES))}"
            )
        if self.state == State.FAILED and self.next_attempt_at is None:
            raise ValueError(f"failed outcome of {self.id} needs next_attempt_at")
        require_aware(self.at)


@dataclass(frozen=True, slots=True)
class ExpiredLease:
    id: str
    state: str  # claimed (never sent) or sending (outcome unknown)
    lease_owner: str | None
    lease_until: datetime
    fire_at: datetime


# --- claiming ----------------------------------------------------------------------------------


def claim_due(
    *,
    engine: Engine,
    storm: str,
    worker: str,
    now: datetime,
    horizon: timedelta,
    limit: int,
    lease: timedelta,
) -> list[ClaimedItem]:
    """Claim up to `limit` sendable items of `storm` firing by `now + horizon`, earliest first.

    Sendable: `pending`, `staged`, and `failed` whose `next_attempt_at <= now`. Call
    `mark_missed` before: this does not look at how late an item is. One statement:
    `UPDATE ... WHERE id IN (SELECT ... ORDER BY fire_at, id LIMIT n FOR UPDATE SKIP LOCKED)
    RETURNING ...` — on PostgreSQL concurrent claimers skip each other's rows; on SQLite the
    transaction holds the write lock, so no other process claims meanwhile.
    """
    require_aware(now)
    if limit <= 0:
        return []
    due = (
        select(_t.c.id)
        .where(_t.c.storm == storm, _t.c.fire_at <= now + horizon, _sendable(now))
        .order_by(_t.c.fire_at, _t.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return _take(
        engine,
        due,
        worker=worker,
        now=now,
        lease=lease,
        state=State.CLAIMED,
        claimed_from=_t.c.state,
    )


def claim_unknown(
    *, engine: Engine, storm: str, worker: str, now: datetime, limit: int, lease: timedelta
) -> list[ClaimedItem]:
    """Lease `sending` items whose outcome is unknown (see `recover_expired`) to reconcile.

    They stay `sending`; `state_before` is `sending`. Record what reconciliation found with
    `record_outcomes`: `sent`, `unconfirmed`, or `failed` with a retry time. Never send them
    with `record_attempt` (it refuses them: they are not `claimed`).
    """
    require_aware(now)
    if limit <= 0:
        return []
    unknown = (
        select(_t.c.id)
        .where(_t.c.storm == storm, _t.c.state == State.SENDING, _t.c.lease_until.is_(None))
        .order_by(_t.c.fire_at, _t.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return _take(
        engine,
        unknown,
        worker=worker,
        now=now,
        lease=lease,
        state=State.SENDING,
        claimed_from=_t.c.claimed_from,
    )


def _take(
    engine: Engine,
    ids: Any,
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
    state: State,
    claimed_from: Any,
) -> list[ClaimedItem]:
    # In SET, `claimed_from = state` reads the row's state before this update.
    stmt = (
        update(_t)
        .where(_t.c.id.in_(ids))
        .values(
            state=state,
            claimed_from=claimed_from,
            lease_owner=worker,
            lease_until=now + lease,
            updated_at=now,
        )
        .returning(*_ITEM_COLUMNS)
    )
    with engine.begin() as conn:
        rows = conn.execute(stmt).all()
    return sorted((_claimed(r) for r in rows), key=lambda c: (c.fire_at, c.id))


def _claimed(row: AnyRow) -> ClaimedItem:
    before = row.state if row.state == State.SENDING else row.claimed_from
    return ClaimedItem(
        id=row.id,
        kind=row.kind,
        platform=row.platform,
        account=row.account,
        fire_at=row.fire_at,
        lang=row.lang,
        text=row.text,
        media=row.media,
        payload=row.payload,
        content_hash=row.content_hash,
        idempotency_key=row.idempotency_key,
        attempts=row.attempts,
        state_before=before,
        lease_until=row.lease_until,
        seq=row.seq,
        # `schedule` puts a rewritten item back to pending without clearing staged_data.
        staged_data=None if before == State.PENDING else row.staged_data,
    )


def _sendable(now: datetime) -> Any:
    return or_(
        _t.c.state.in_((State.PENDING, State.STAGED)),
        and_(_t.c.state == State.FAILED, _t.c.next_attempt_at <= now),
    )


def renew(
    *, engine: Engine, ids: Sequence[str], worker: str, now: datetime, lease: timedelta
) -> list[str]:
    """Extend to `now + lease` the live leases of `worker` on `ids` (claimed or sending);
    returns the ids renewed. An expired lease is not renewed: it may have been recovered."""
    require_aware(now)
    with engine.begin() as conn:
        held = _held(conn, ids, worker)
        ok = [
            i
            for i, r in held.items()
            if r.state in HELD and r.lease_until is not None and r.lease_until >= now
        ]
        _update_ids(conn, ok, lease_until=now + lease, updated_at=now)
    return _in_order(ids, ok)


def mark_staged(
    *,
    engine: Engine,
    id: str,
    worker: str,
    content_hash: str,
    staged_data: dict[str, Any],
    now: datetime,
) -> bool:
    """Store what staging produced for item `id`, if it was staged from `content_hash`.

    Returns False and changes nothing when the row's content_hash differs (a concurrent
    `stormer schedule` rewrote it: stage again), or the item is claimed by another worker or
    no longer sendable. A `pending` item becomes `staged`; a `failed` one keeps its state and
    retry time; one claimed by `worker` stays claimed and is released as `staged`.
    `staged_data` is stored as JSON: ids and references only, never secrets.
    """
    return bool(
        mark_staged_many(
            engine=engine, worker=worker, now=now, staged=[(id, content_hash, staged_data)]
        )
    )


def mark_staged_many(
    *, engine: Engine, worker: str, staged: Sequence[tuple[str, str, dict[str, Any]]], now: datetime
) -> list[str]:
    """`mark_staged` for a batch of `(id, content_hash, staged_data)`, in one transaction;
    returns the ids marked, in the order given. Each row is judged as `mark_staged` judges
    it; if an id comes twice, the last entry counts."""
    require_aware(now)
    wanted = {i: (h, d) for i, h, d in staged}
    if not wanted:
        return []
    with engine.begin() as conn:
        rows = []
        for chunk in chunks(sorted(wanted)):  # locked in id order (see `_held`)
            for row in conn.execute(
                select(_t.c.id, _t.c.state, _t.c.lease_owner, _t.c.content_hash, _t.c.claimed_from)
                .where(_t.c.id.in_(chunk))
                .order_by(_t.c.id)
                .with_for_update()
            ):
                content_hash, staged_data = wanted[row.id]
                if row.content_hash != content_hash:
                    continue
                state, claimed_from = row.state, row.claimed_from
                if state == State.CLAIMED and row.lease_owner == worker:
                    if claimed_from == State.PENDING:
                        claimed_from = State.STAGED
                elif state in CLAIMABLE:
                    if state == State.PENDING:
                        state = State.STAGED
                else:
                    continue
                # The row is locked: writing back its own state and claimed_from is a no-op.
                rows.append(
                    {
                        "b_id": row.id,
                        "state": state,
                        "claimed_from": claimed_from,
                        "staged_data": staged_data,
                        "staged_at": now,
                        "updated_at": now,
                    }
                )
        if rows:
            conn.execute(update(_t).where(_t.c.id == bindparam("b_id")), rows)
    return _in_order([i for i, _, _ in staged], (r["b_id"] for r in rows))


# --- sending and outcomes ----------------------------------------------------------------------


def record_attempt(
    *, engine: Engine, ids: Sequence[str], worker: str, now: datetime, burst: str | None = None
) -> list[str]:
    """Mark `sending` (attempts + 1, first_attempt_at set once) the items of `ids` that
    `worker` holds claimed under a live lease, as part of `burst`; returns those ids, in the
    order given.

    Call it before the requests leave, and send only what it returns: an item whose lease
    expired or was recovered by another worker is not returned and must not be sent. With a
    `burst`, send only once `bursts.begin` recorded that it began (see stormer.outbox.bursts);
    without one, a crash leaves every item an unknown outcome.
    """
    require_aware(now)
    with engine.begin() as conn:
        held = _held(conn, ids, worker)
        ok = [
            i
            for i, r in held.items()
            if r.state == State.CLAIMED and r.lease_until is not None and r.lease_until >= now
        ]
        _update_ids(
            conn,
            ok,
            state=State.SENDING,
            attempts=_t.c.attempts + 1,
            first_attempt_at=func.coalesce(_t.c.first_attempt_at, _at(now)),
            updated_at=now,
            burst=burst,
        )
    return _in_order(ids, ok)


def record_outcomes(*, engine: Engine, outcomes: Sequence[Outcome], worker: str) -> int:
    """Write a batch of outcomes; returns how many rows were written.

    Only rows `claimed` or `sending` whose `lease_owner` is `worker` are written (also after
    `recover_expired` cleared the lease: the sender's own answer beats a reconciliation).
    A `sent` row is final: a late or duplicate outcome leaves it alone. If one batch holds
    several outcomes for an id, `sent` wins, else the last one.
    """
    final: dict[str, Outcome] = {}
    for o in outcomes:
        if o.id not in final or final[o.id].state != State.SENT:
            final[o.id] = o
    with engine.begin() as conn:
        held = _held(conn, list(final), worker)
        rows = [_outcome_values(final[i]) for i, r in held.items() if r.state in HELD]
        if rows:
            conn.execute(update(_t).where(_t.c.id == bindparam("b_id")), rows)
    return len(rows)


def _outcome_values(o: Outcome) -> dict[str, Any]:
    sent = o.state == State.SENT
    return {
        "b_id": o.id,
        "state": o.state,
        "updated_at": o.at,
        "lease_until": None,
        "claimed_from": None,
        "sent_at": o.at if sent else None,
        "remote_id": o.remote_id,
        "permalink": o.permalink,
        "error": None if sent else o.error,
        "next_attempt_at": o.next_attempt_at,
    }


def release(
    *, engine: Engine, ids: Sequence[str], worker: str, now: datetime | None = None
) -> list[str]:
    """Give back items `worker` holds claimed (not sending): each returns to the state it was
    claimed from. For a clean shutdown. Returns the ids released."""
    now = datetime.now(UTC) if now is None else require_aware(now)
    with engine.begin() as conn:
        held = _held(conn, ids, worker)
        ok = [i for i, r in held.items() if r.state == State.CLAIMED]
        _update_ids(conn, ok, **_released(now))
    return _in_order(ids, ok)


def _released(now: datetime) -> dict[str, Any]:
    return {
        "state": func.coalesce(_t.c.claimed_from, State.PENDING),
        "claimed_from": None,
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
    }


# --- recovery ----------------------------------------------------------------------------------


def expired_leases(*, engine: Engine, storm: str, now: datetime) -> list[ExpiredLease]:
    """Items of `storm` claimed or sending whose lease ended before `now`, earliest first."""
    require_aware(now)
    with engine.begin() as conn:
        rows = conn.execute(
            select(_t.c.id, _t.c.state, _t.c.lease_owner, _t.c.lease_until, _t.c.fire_at)
            .where(_t.c.storm == storm, _t.c.state.in_(HELD), _t.c.lease_until < now)
            .order_by(_t.c.lease_until, _t.c.id)
        ).all()
    return [ExpiredLease(r.id, r.state, r.lease_owner, r.lease_until, r.fire_at) for r in rows]


def recover_expired(
    *, engine: Engine, storm: str, now: datetime, worker: str
) -> tuple[list[str], list[str]]:
    """Deal with the expired leases of `storm`; returns (released ids, unknown ids).

    `claimed` (the request never left): back to the state it was claimed from, sendable.
    `sending` of a burst that never began (`bursts.settle`; its worker died before T): the
    same, with the attempt taken back. Other `sending` items (the request may have left):
    NOT made sendable. Each stays `sending`, its lease is cleared (`lease_until` NULL,
    `lease_owner` kept) and `error` is set to `UNKNOWN_OUTCOME` plus the recovering
    `worker`; reconcile it (`claim_unknown`) before anything else. Rows another transaction
    holds locked are skipped until the next call.
    """
    require_aware(now)

    def expired(state: State) -> Any:
        return (
            select(_t.c.id)
            .where(_t.c.storm == storm, _t.c.state == state, _t.c.lease_until < now)
            .with_for_update(skip_locked=True)
        )

    with engine.begin() as conn:
        released = (
            conn.execute(
                update(_t)
                .where(_t.c.id.in_(expired(State.CLAIMED)))
                .values(**_released(now))
                .returning(_t.c.id)
            )
            .scalars()
            .all()
        )
        in_flight = conn.execute(
            expired(State.SENDING).add_columns(_t.c.burst, _t.c.lease_owner)
        ).all()
        began = bursts.settle(
            conn,
            {r.burst: r.lease_owner for r in in_flight if r.burst is not None},
            storm=storm,
            worker=worker,
        )
        never_left = [r.id for r in in_flight if r.burst is not None and r.burst not in began]
        unknown = [r.id for r in in_flight if r.burst is None or r.burst in began]
        _update_ids(conn, never_left, **_released(now), attempts=_t.c.attempts - 1, burst=None)
        _update_ids(
            conn,
            unknown,
            lease_until=None,
            updated_at=now,
            error=f"{UNKNOWN_OUTCOME} (noticed by {worker})",
        )
    return sorted([*released, *never_left]), sorted(unknown)


def mark_missed(*, engine: Engine, storm: str, now: datetime, grace: timedelta) -> list[str]:
    """Make `missed` the unsent items (`pending`, `staged`, `failed`) of `storm` whose
    `fire_at + grace < now`: after a restart they are not fired hours late. Returns their ids.
    Claimed items are their worker's to judge (it must not fire them past grace either)."""
    require_aware(now)
    late = (
        select(_t.c.id)
        .where(_t.c.storm == storm, _t.c.state.in_(CLAIMABLE), _t.c.fire_at < now - grace)
        .with_for_update(skip_locked=True)
    )
    with engine.begin() as conn:
        ids = (
            conn.execute(
                update(_t)
                .where(_t.c.id.in_(late))
                .values(
                    state=State.MISSED,
                    claimed_from=None,
                    lease_until=None,
                    updated_at=now,
                    # Keep why it was not sent (a staging error that named its fix).
                    error=literal(f"missed: not sent within {grace} of its time")
                    + func.coalesce(literal("; before that: ") + _t.c.error, ""),
                )
                .returning(_t.c.id)
            )
            .scalars()
            .all()
        )
    return sorted(ids)


# --- helpers -----------------------------------------------------------------------------------


def _held(conn: Connection, ids: Iterable[str], worker: str) -> dict[str, AnyRow]:
    """Rows of `ids` whose lease_owner is `worker`, locked until the transaction ends.

    By primary key only (see the module docstring); locked in id order, so two transactions
    locking overlapping batches cannot deadlock.
    """
    held: dict[str, AnyRow] = {}
    for chunk in chunks(sorted(set(ids))):
        for row in conn.execute(
            select(_t.c.id, _t.c.state, _t.c.lease_until)
            .where(_t.c.id.in_(chunk), _t.c.lease_owner == worker)
            .order_by(_t.c.id)
            .with_for_update()
        ):
            held[row.id] = row
    return held


def _update_ids(conn: Connection, ids: Sequence[str], **values: Any) -> None:
    for chunk in chunks(ids):
        conn.execute(update(_t).where(_t.c.id.in_(chunk)).values(**values))


def _in_order(ids: Sequence[str], chosen: Iterable[str]) -> list[str]:
    keep = set(chosen)
    return [i for i in dict.fromkeys(ids) if i in keep]


def _at(value: datetime) -> Any:
    """A datetime bound as UTCDateTime where SQLAlchemy cannot infer it (inside functions)."""
    return literal(value, UTCDateTime())
