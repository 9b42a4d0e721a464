"""intake accuracy: the property of an inbound delivery (anonymous missed calls per property), a lead's
non-identifying callback phone

Revision ID: i17
Revises: 0005
Create Date: 2026-11-30 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "i17"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "inbound_messages",
        sa.Column(
            "property_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("properties.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_inbound_messages_property_id",
        "inbound_messages",
        ["property_id"],
        postgresql_where=sa.text("property_id IS NOT NULL"),
    )
    op.add_column("leads", sa.Column("callback_phone", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("leads", "callback_phone")
    op.drop_index("ix_inbound_messages_property_id", table_name="inbound_messages")
    op.drop_column("inbound_messages", "property_id")
