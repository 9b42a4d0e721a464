"""leads by owner and status, newest first: one stage of one agent's leads

Revision ID: q22o
Revises: p21s
Create Date: 2026-12-01 03:40:00

Issue #16: `GET /v1/leads?owner_id=…&status=…` ("my new leads", a stage of one agent's board) walked the owner's
leads newest first and dropped the other stages, one heap page each: at 1 M leads (60 owners) p50 12.7 ms and
up to 213 ms for a rare stage. With this index: p50 1.7 ms, at most 6.5 ms. `owner_id=none` (the unassigned)
uses it too. Built in ~1.2 s at 1 M leads; it locks writes to `leads` meanwhile (a migration runs in a
transaction: not CONCURRENTLY).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "q22o"
down_revision: str | None = "p21s"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_leads_org_id_owner_id_status_created_at",
        "leads",
        ["org_id", "owner_id", "status", sa.literal_column("created_at DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_leads_org_id_owner_id_status_created_at", table_name="leads")
