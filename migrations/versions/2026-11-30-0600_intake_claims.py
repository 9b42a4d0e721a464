"""intake batches: a claim lease on inbound rows (issue #16)

A worker job claims many `received` rows at once (FOR NO KEY UPDATE SKIP LOCKED) and sets `claimed_until`;
other jobs skip a row under a live lease, the sweep clears the lease of a row it queues again.

Revision ID: h16a
Revises: i15a
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "h16a"
down_revision: str | None = "i15a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("inbound_messages", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    # the batch claim: an organization's received rows, oldest first
    op.create_index(
        "ix_inbound_messages_org_id_received",
        "inbound_messages",
        ["org_id", "received_at"],
        postgresql_where=sa.text("status = 'received'"),
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_org_id_received", table_name="inbound_messages")
    op.drop_column("inbound_messages", "claimed_until")
