"""owners: assignment settings, round-robin cursors, offers, collaborators, SLA timers, scope settings

Revision ID: o09
Revises: w15
Create Date: 2026-11-30 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "o09"
down_revision: str | None = "w15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_PROPERTY = "00000000-0000-0000-0000-000000000000"
UUID = postgresql.UUID(as_uuid=True)


def _org() -> sa.Column:
    return sa.Column("org_id", UUID, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    op.add_column("organizations", sa.Column("agents_see_all", sa.Boolean(), server_default="false", nullable=False))
    op.add_column(
        "organizations", sa.Column("agents_can_reassign", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column("leads", sa.Column("pooled_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "assignment_settings",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("property_id", UUID, sa.ForeignKey("properties.id", ondelete="CASCADE"), nullable=True),
        sa.Column("strategy", sa.String(16), server_default="round_robin", nullable=False),
        sa.Column("fallback_strategy", sa.String(16), server_default="round_robin", nullable=False),
        sa.Column("fixed_user_id", UUID, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("offers_enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("offer_timeout_minutes", sa.Integer(), server_default="5", nullable=False),
        sa.Column("sla_minutes", sa.Integer(), server_default="15", nullable=False),
        sa.Column("sla_after_hours_minutes", sa.Integer(), server_default="60", nullable=False),
        sa.Column("sla_reassign", sa.Boolean(), server_default="false", nullable=False),
        *_stamps(),
    )
    op.create_index("ix_assignment_settings_org_id", "assignment_settings", ["org_id"])
    op.create_index(
        "uq_assignment_settings_org_property",
        "assignment_settings",
        ["org_id", sa.text(f"COALESCE(property_id, '{NO_PROPERTY}'::uuid)")],
        unique=True,
    )

    op.create_table(
        "round_robin_cursors",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("pool_id", UUID, nullable=False),
        sa.Column("user_id", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("pass_value", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("assigned_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_round_robin_cursors_org_id", "round_robin_cursors", ["org_id"])
    op.create_index("uq_round_robin_cursors_pool", "round_robin_cursors", ["org_id", "pool_id", "user_id"], unique=True)

    op.create_table(
        "lead_offers",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("lead_id", UUID, sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_seconds", sa.Integer(), nullable=True),
        *_stamps(),
    )
    op.create_index("ix_lead_offers_org_id", "lead_offers", ["org_id"])
    op.create_index("ix_lead_offers_lead_id", "lead_offers", ["lead_id"])
    op.create_index("ix_lead_offers_user_id_status", "lead_offers", ["user_id", "status"])
    op.create_index("ix_lead_offers_due", "lead_offers", ["expires_at"], postgresql_where=sa.text("status = 'pending'"))
    op.create_index(
        "uq_lead_offers_pending_lead",
        "lead_offers",
        ["lead_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "lead_collaborators",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("lead_id", UUID, sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        *_stamps(),
    )
    op.create_index("ix_lead_collaborators_org_id", "lead_collaborators", ["org_id"])
    op.create_index("ix_lead_collaborators_user_id", "lead_collaborators", ["user_id"])
    op.create_index("uq_lead_collaborators_lead_user", "lead_collaborators", ["lead_id", "user_id"], unique=True)

    op.create_table(
        "sla_timers",
        sa.Column("id", UUID, primary_key=True),
        _org(),
        sa.Column("lead_id", UUID, sa.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        *_stamps(),
    )
    op.create_index("ix_sla_timers_org_id", "sla_timers", ["org_id"])
    op.create_index("uq_sla_timers_lead_id", "sla_timers", ["lead_id"], unique=True)
    op.create_index("ix_sla_timers_due", "sla_timers", ["due_at"], postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_table("sla_timers")
    op.drop_table("lead_collaborators")
    op.drop_table("lead_offers")
    op.drop_table("round_robin_cursors")
    op.drop_table("assignment_settings")
    op.drop_column("leads", "pooled_at")
    op.drop_column("organizations", "agents_can_reassign")
    op.drop_column("organizations", "agents_see_all")
