"""leads by stage within a property and within an owner, newest first: a leasing board's columns

Revision ID: p21s
Revises: o20k
Create Date: 2026-12-01 03:00:00

Issue #16. A list filtered by one stage and a property (`GET /v1/leads?property_id=…&status=…`, a board's
column) or an owner (`?owner_id=…&status=…`, "my new leads") walked the property's or the owner's leads newest
first and dropped the other stages, one heap page each. At 1 M leads: a rare stage at a property read ~4,100 rows
for 51 (13 ms cold, the filtered list's p99); by owner, p50 12.7 ms and up to 213 ms. With these indexes: ~50
index entries, 0.3 ms at a property; by owner p50 1.7 ms, at most 6.5 ms. `owner_id=none` (the unassigned)
uses the second too. Each builds in ~1.3 s at 1 M leads and locks writes to `leads` meanwhile (a migration runs
in a transaction: not CONCURRENTLY).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "p21s"
down_revision: str | None = "o20k"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_leads_org_id_property_id_status_created_at": "property_id",
    "ix_leads_org_id_owner_id_status_created_at": "owner_id",
}


def upgrade() -> None:
    for name, column in INDEXES.items():
        op.create_index(name, "leads", ["org_id", column, "status", sa.literal_column("created_at DESC")])


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="leads")
