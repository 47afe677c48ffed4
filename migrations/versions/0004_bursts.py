"""Bursts: whether a worker's burst began sending before it died.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Hand-written, and independent of `stormer.models` (see 0001). Items marked `sending` before T
name their burst (`outbox.burst`); the worker writes its burst's row just before the first
request leaves, or a recovering worker writes it as abandoned. Rows marked before this
migration have no burst: after a crash they stay unknown outcomes, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("burst", sa.String(32), nullable=True))
    op.create_table(
        "bursts",
        sa.Column("burst_id", sa.String(32), nullable=False),
        sa.Column("storm", sa.String(), nullable=False),
        sa.Column("worker", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("abandoned_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("burst_id", name=op.f("pk_bursts")),
    )
    op.create_index(op.f("ix_bursts_storm"), "bursts", ["storm"])


def downgrade() -> None:
    op.drop_index(op.f("ix_bursts_storm"), table_name="bursts")
    op.drop_table("bursts")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("burst")
