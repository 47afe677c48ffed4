"""Create the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Hand-written, and deliberately independent of `stormer.models` (a migration must keep meaning
what it meant when it was written): the types are the underlying ones and the states are listed
here literally.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = (
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


def upgrade() -> None:
    utc = sa.DateTime(timezone=True)
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("storm", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("lang", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("fire_at", utc, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", utc, nullable=True),
        sa.Column("next_attempt_at", utc, nullable=True),
        sa.Column("sent_at", utc, nullable=True),
        sa.Column("remote_id", sa.String(), nullable=True),
        sa.Column("permalink", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("updated_at", utc, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")",
            name=op.f("ck_outbox_state"),
        ),
    )
    op.create_index(op.f("ix_outbox_storm"), "outbox", ["storm"])
    op.create_index(op.f("ix_outbox_state_fire_at"), "outbox", ["state", "fire_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_state_fire_at"), table_name="outbox")
    op.drop_index(op.f("ix_outbox_storm"), table_name="outbox")
    op.drop_table("outbox")
