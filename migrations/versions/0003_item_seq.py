"""The item's place among its account's posts (`QueueItem.seq`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Hand-written, and independent of `stormer.models` (see 0001). Bluesky record keys are drawn
from it, so that two posts of one account at one instant can never draw the same key. Rows
scheduled before this migration get 0; they keep the record key they were staged with (it is
in `staged_data`), and `stormer schedule` cannot change an id's seq.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("seq")
