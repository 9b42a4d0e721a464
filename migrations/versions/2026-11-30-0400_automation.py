"""automation: rule-set versions, scheduled actions, automation log, the next action's source

Revision ID: a11
Revises: i17
Create Date: 2026-11-30 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a11"
down_revision: str | None = "i17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _org() -> sa.Column:
    return sa.Column(
        "org_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.add_column("leads", sa.Column("next_action_source", postgresql.JSONB(), nullable=True))
    op.create_table(
        "automation_rule_sets",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        _org(),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("property_id", postgresql.UUID(as_uuid=True),
                  sa.ForeignKey("properties.id", ondelete="CASCADE"), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", postgresql.JSONB(), nullable=False),
        sa.Column("created_by_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.UniqueConstraint("org_id", "scope", "version"),
    )
    op.create_index("ix_automation_rule_sets_org_id", "automation_rule_sets", ["org_id"])
    op.create_table(
        "scheduled_actions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        _org(),
        sa.Column("lead_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("leads.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("rule_scope", sa.String(64), nullable=False),
        sa.Column("sequence", sa.String(64), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("payload", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grace_seconds", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("org_id", "idempotency_key"),
    )
    op.create_index("ix_scheduled_actions_org_id", "scheduled_actions", ["org_id"])
    op.create_index("ix_scheduled_actions_due", "scheduled_actions", ["due_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_scheduled_actions_lead_id_status", "scheduled_actions", ["lead_id", "status"])
    op.create_table(
        "automation_log",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        _org(),
        sa.Column("lead_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("leads.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("contact_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("contacts.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=True),
        sa.Column("rule_version", sa.Integer(), nullable=True),
        sa.Column("rule_scope", sa.String(64), nullable=True),
        sa.Column("action", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("scheduled_action_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("data", postgresql.JSONB(), server_default="{}", nullable=False),
    )
    op.create_index("ix_automation_log_org_id", "automation_log", ["org_id"])
    op.create_index("ix_automation_log_lead_id_occurred_at", "automation_log", ["lead_id", "occurred_at"])
    op.create_index("ix_automation_log_contact_id_occurred_at", "automation_log", ["contact_id", "occurred_at"])


def downgrade() -> None:
    op.drop_table("automation_log")
    op.drop_table("scheduled_actions")
    op.drop_table("automation_rule_sets")
    op.drop_column("leads", "next_action_source")
