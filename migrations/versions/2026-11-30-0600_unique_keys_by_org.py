"""unique keys carry org_id: the last four that did not, so the schema can be distributed by organization

Revision ID: c16
Revises: t12
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c16"
down_revision: str | None = "t12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, columns before, columns after, partial predicate)
INDEXES = [
    ("uq_lead_offers_pending_lead", "lead_offers", ["lead_id"], ["org_id", "lead_id"], "status = 'pending'"),
    (
        "uq_lead_collaborators_lead_user",
        "lead_collaborators",
        ["lead_id", "user_id"],
        ["org_id", "lead_id", "user_id"],
        None,
    ),
    ("uq_sla_timers_lead_id", "sla_timers", ["lead_id"], ["org_id", "lead_id"], None),
    (
        "uq_webhook_deliveries_endpoint_id_event_id",
        "webhook_deliveries",
        ["endpoint_id", "event_id"],
        ["org_id", "endpoint_id", "event_id"],
        None,
    ),
]


def _recreate(columns_index: int) -> None:
    for name, table, *columns, where in INDEXES:
        op.drop_index(name, table_name=table)
        extra = {"postgresql_where": where} if where else {}
        op.create_index(name, table, columns[columns_index], unique=True, **extra)


def upgrade() -> None:
    _recreate(1)


def downgrade() -> None:
    _recreate(0)
