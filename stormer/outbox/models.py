"""The outbox table: every post and reminder stormer will send is a row here before the storm.

The database is the truth; the scheduler is only an alarm clock. The schema itself is owned by
Alembic (`migrations/`): change these classes only together with a new migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Final

from sqlalchemy import JSON, CheckConstraint, DateTime, Index, MetaData, String, Text
from sqlalchemy import text as sql_text  # `text` is also a column name below
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class State(StrEnum):
    """Where an outbox item is in its life; the value is what the `state` column holds.

    Members are in lifecycle order (`status` and `report` count them in this order):
    pending → staged → claimed → sending → sent | failed | dead | unconfirmed | missed.
    `failed` is claimable again at its `next_attempt_at`; `cancelled` is an item the plan no
    longer contains (kept, never deleted, restored if planned again). Being a `str`, a member
    equals the text stored in the database and prints (and serializes to JSON) as it.
    """

    PENDING = "pending"  # planned, nothing done yet
    STAGED = "staged"  # logged in, media uploaded: ready to fire (not held by any worker)
    CLAIMED = "claimed"  # held by a worker under a lease, its request not sent yet
    SENDING = "sending"  # the request may have left: never sent again before reconciling
    SENT = "sent"  # landed (final; `sent_at` says when)
    FAILED = "failed"  # did not land; claimable again from `next_attempt_at`
    DEAD = "dead"  # given up (rejected, auth, retries past the grace): final
    UNCONFIRMED = "unconfirmed"  # may or may not have landed, nobody can tell: final
    MISSED = "missed"  # not sent within the grace of its time, so never sent late: final
    CANCELLED = "cancelled"  # no longer in the plan, never sent


# The named groups of states. Each is written here only; in lifecycle order.

# What a claim can be taken from, so what a released claim goes back to (`claimed_from`); also
# the unsent items that `mark_missed` gives up on.
CLAIMABLE: Final = (State.PENDING, State.STAGED, State.FAILED)

# What a changed plan may rewrite or cancel (`schedule`): no worker holds them, and nothing of
# them has reached a platform.
EDITABLE: Final = (State.PENDING, State.STAGED, State.FAILED)

# What `schedule` may write over: EDITABLE, and CANCELLED (restored when planned again).
REPLANNABLE: Final = (*EDITABLE, State.CANCELLED)

# Held by a worker under its lease (`lease_owner`, `lease_until`): only that worker writes
# their outcome, and an expired lease is recovered.
HELD: Final = (State.CLAIMED, State.SENDING)

# Not settled yet: a worker should still send (or reconcile) them. Every other state is final
# (or cancelled): `stormer run --until-done` stops when none is left.
WAITING: Final = (State.PENDING, State.STAGED, State.CLAIMED, State.SENDING, State.FAILED)

# Still to be fired (`failed`: fired again): WAITING but `sending`, whose request has left.
# The watchdog wants each of them staged by a live worker before T.
TO_FIRE: Final = (State.PENDING, State.STAGED, State.CLAIMED, State.FAILED)

# What a worker may record as an item's outcome (`claims.Outcome`).
OUTCOMES: Final = (State.SENT, State.FAILED, State.DEAD, State.UNCONFIRMED, State.MISSED)

# Constraint names must be deterministic so that later migrations (and SQLite batch mode, which
# recreates tables) can refer to them by name.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that only accepts tz-aware datetimes, stores UTC and returns aware UTC.

    SQLite has no time zone type and stores naive text; storing every value in UTC is also what
    keeps its text comparisons (`fire_at <= :now`, the index) chronological.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = require_aware(value).astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: we stored UTC
            return value.replace(tzinfo=UTC)
        # PostgreSQL answers in the session's TimeZone, whatever it is.
        return value.astimezone(UTC)


def require_aware(value: datetime) -> datetime:
    """`value`, if it is tz-aware. A naive datetime is refused (ValueError) rather than
    guessed: the outbox compares instants, and a guessed zone fires hours early or late."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: give a tz-aware one")
    return value


class Base(DeclarativeBase):
    """Declarative base for stormer's tables; every `datetime` column is a `UTCDateTime`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Outbox(Base):
    """One thing to send (a post or a reminder), with its delivery state and outcome."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in State) + ")", name="state"),
        CheckConstraint(
            "claimed_from IN (" + ", ".join(f"'{s}'" for s in CLAIMABLE) + ")",
            name="claimed_from",
        ),
        # The dispatcher's question is always "which rows in state S are due?".
        Index(None, "state", "fire_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # QueueItem.id
    storm: Mapped[str] = mapped_column(String, index=True)  # the storm's slug
    kind: Mapped[str] = mapped_column(String)
    platform: Mapped[str] = mapped_column(String)
    account: Mapped[str] = mapped_column(String)
    lang: Mapped[str] = mapped_column(String)
    source: Mapped[str | None] = mapped_column(String)
    fire_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(
        String, default=State.PENDING, server_default=State.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default=sql_text("0"))
    idempotency_key: Mapped[str | None] = mapped_column(String)
    lease_owner: Mapped[str | None] = mapped_column(String)
    lease_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    remote_id: Mapped[str | None] = mapped_column(String)
    permalink: Mapped[str | None] = mapped_column(String)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Set by stormer.claims (migration 0002).
    claimed_from: Mapped[str | None] = mapped_column(String)  # where a release goes back to
    first_attempt_at: Mapped[datetime | None]  # idempotency keys expire (Mastodon: 1 h after)
    # What staging produced (media ids, blob refs; never secrets), valid for `content_hash`.
    staged_data: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    staged_at: Mapped[datetime | None]
    # QueueItem.seq (migration 0003): the item's place among its account's posts.
    seq: Mapped[int] = mapped_column(default=0, server_default=sql_text("0"))
    # The burst of its latest attempt (migration 0004): whether that burst ever began sending
    # decides, after a crash, between "nothing left" and "the outcome is unknown".
    burst: Mapped[str | None] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"<Outbox {self.id} {self.state} {self.platform}/{self.account} {self.fire_at}>"


class Burst(Base):
    """One burst of one worker: the items it marked `sending` before T name it (`Outbox.burst`).

    Written once, by whichever comes first: the worker itself, just before its first request
    leaves (`started_at`), or a worker recovering the burst's items after their lease ran out
    (`abandoned_by`): then the burst never began, nothing of it left, and its items are sent
    again. The primary key makes the two exclusive (stormer.outbox.claims)."""

    __tablename__ = "bursts"

    burst_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    storm: Mapped[str] = mapped_column(String, index=True)
    worker: Mapped[str] = mapped_column(String)
    started_at: Mapped[datetime | None]
    abandoned_by: Mapped[str | None] = mapped_column(String)

    def __repr__(self) -> str:
        began = "abandoned" if self.started_at is None else f"began {self.started_at}"
        return f"<Burst {self.burst_id} {self.worker} {began}>"


class Worker(Base):
    """A running (or stopped) dispatcher process: its heartbeat is how `status` tells a
    worker with nothing to do from a worker that is not running."""

    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(String, primary_key=True)
    storm: Mapped[str] = mapped_column(String, index=True)
    hostname: Mapped[str] = mapped_column(String)
    pid: Mapped[int]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    staged_through: Mapped[datetime | None]  # the latest fire time this worker has staged
    stopped_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<Worker {self.worker_id} {self.storm} {self.hostname}:{self.pid}>"
