"""lead reached_rank: the furthest funnel stage a lead ever reached, for source-to-lease metrics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNNEL = (
    "new",
    "contacted",
    "qualified",
    "tour_requested",
    "tour_booked",
    "toured",
    "application_started",
    "application_submitted",
    "leased",
)


def upgrade() -> None:
    op.add_column("leads", sa.Column("reached_rank", sa.SmallInteger(), server_default="0", nullable=False))
    cases = " ".join(f"WHEN '{status}' THEN {rank}" for rank, status in enumerate(FUNNEL))
    # best knowledge for existing rows: the current stage, or the furthest status_changed target on record
    op.execute(f"UPDATE leads SET reached_rank = CASE status {cases} ELSE 0 END")
    op.execute(
        f"""
        UPDATE leads AS l SET reached_rank = GREATEST(l.reached_rank, e.rank)
        FROM (
            SELECT lead_id, MAX(CASE data ->> 'to' {cases} ELSE 0 END) AS rank
            FROM lead_events WHERE type = 'status_changed' GROUP BY lead_id
        ) AS e
        WHERE e.lead_id = l.id
        """
    )

    op.create_index("ix_signal_applications_org_id_applied_at", "signal_applications", ["org_id", "applied_at"])


def downgrade() -> None:
    op.drop_index("ix_signal_applications_org_id_applied_at", table_name="signal_applications")
    op.drop_column("leads", "reached_rank")
