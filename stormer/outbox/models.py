"""The outbox table: every post and reminder stormer will send is a row here before the storm.

The database is the truth; the scheduler is only an alarm clock. The schema itself is owned by
Alembic (`migrations/`): change these classes only together with a new migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from sqlalchemy import JSON, CheckConstraint, DateTime, Index, MetaData, String, Text
from sqlalchemy import text as sql_text  # `text` is also a column name below
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Lifecycle order: pending → staged → claimed → sending → sent | failed | dead | unconfirmed |
# missed; `cancelled` is an item the plan no longer contains (kept, never deleted).
STATES: Final = (
    "pending",
    "staged",
    "claimed",
    "sending",
    "sent",
    "failed",
    "dead",
    "unconfirmed",
    "missed",
    "cancelled",
)

# The states a claim can be taken from, and so the states a released claim goes back to.
CLAIMABLE: Final = ("pending", "staged", "failed")

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
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give a tz-aware one")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: we stored UTC
            return value.replace(tzinfo=UTC)
        # PostgreSQL answers in the session's TimeZone, whatever it is.
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base for stormer's tables; every `datetime` column is a `UTCDateTime`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Outbox(Base):
    """One thing to send (a post or a reminder), with its delivery state and outcome."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="state"),
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
    state: Mapped[str] = mapped_column(String, default="pending", server_default="pending")
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

    def __repr__(self) -> str:
        return f"<Outbox {self.id} {self.state} {self.platform}/{self.account} {self.fire_at}>"


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
