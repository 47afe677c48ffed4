"""Leases and workers: what claiming, staging and heartbeats need.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Hand-written, and independent of `stormer.models` (see 0001). On the outbox: `claimed_from`
(the state a claim was taken from, so a released claim goes back to it), `first_attempt_at`
(idempotency keys expire: Mastodon keeps them one hour), `staged_data` and `staged_at` (what
staging produced). A new `workers` table holds the dispatchers' heartbeats.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIMABLE = ("pending", "staged", "failed")


def upgrade() -> None:
    utc = sa.DateTime(timezone=True)
    # Batch mode: on SQLite a new CHECK constraint means recreating the table (with its data,
    # indexes and the state constraint); elsewhere these are plain ALTERs.
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_from", sa.String(), nullable=True))
        batch.add_column(sa.Column("first_attempt_at", utc, nullable=True))
        batch.add_column(sa.Column("staged_data", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("staged_at", utc, nullable=True))
        batch.create_check_constraint(
            op.f("ck_outbox_claimed_from"),
            "claimed_from IN (" + ", ".join(f"'{s}'" for s in CLAIMABLE) + ")",
        )
    op.create_table(
        "workers",
        sa.Column("worker_id", sa.String(), nullable=False),
        sa.Column("storm", sa.String(), nullable=False),
        sa.Column("hostname", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", utc, nullable=False),
        sa.Column("heartbeat_at", utc, nullable=False),
        sa.Column("staged_through", utc, nullable=True),
        sa.Column("stopped_at", utc, nullable=True),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_storm"), "workers", ["storm"])


def downgrade() -> None:
    op.drop_index(op.f("ix_workers_storm"), table_name="workers")
    op.drop_table("workers")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_claimed_from"), type_="check")
        batch.drop_column("staged_at")
        batch.drop_column("staged_data")
        batch.drop_column("first_attempt_at")
        batch.drop_column("claimed_from")
