"""Hot intake tables: drop the single-column org_id index a composite index already leads with (issue #16).

Every lead writes rows to these six tables, and each of them has a composite btree index whose first column
is org_id (e.g. leads (org_id, status, created_at), lead_events (org_id, type, occurred_at)): it serves every
lookup by organization and the ON DELETE CASCADE from organizations, so the single-column index only costs
one more index entry per insert. The models say so with `OrgLedMixin`.

Revision ID: x16i
Revises: i15b
"""

from collections.abc import Sequence

from alembic import op

revision: str = "x16i"
down_revision: str | None = "i15b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("leads", "lead_events", "inbound_messages", "outbound_messages", "contact_identities", "scheduled_actions")


def upgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_org_id", table_name=table)


def downgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_org_id", table, ["org_id"])
