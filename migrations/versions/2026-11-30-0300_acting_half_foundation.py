"""acting half foundation: property teams, agent availability, first response split by automation/human,
automation pause

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("mobile_phone", sa.String(32), nullable=True))
    op.add_column("users", sa.Column("away_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("leads", sa.Column("first_automated_response_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("leads", sa.Column("first_human_response_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("leads", sa.Column("automation_paused_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("leads", sa.Column("automation_paused_reason", sa.String(64), nullable=True))
    op.create_table(
        "property_team_members",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("org_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("property_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("properties.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("weight", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("working_hours", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("weight BETWEEN 1 AND 10", name="weight_range"),
        sa.UniqueConstraint("org_id", "property_id", "user_id"),
    )
    op.create_index("ix_property_team_members_org_id", "property_team_members", ["org_id"])
    op.create_index("ix_property_team_members_user_id", "property_team_members", ["user_id"])


def downgrade() -> None:
    op.drop_table("property_team_members")
    op.drop_column("leads", "automation_paused_reason")
    op.drop_column("leads", "automation_paused_at")
    op.drop_column("leads", "first_human_response_at")
    op.drop_column("leads", "first_automated_response_at")
    op.drop_column("users", "away_until")
    op.drop_column("users", "mobile_phone")
