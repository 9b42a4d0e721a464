"""leads: the unowned leads of a property, newest first (an agent's pool)

Revision ID: a25p
Revises: z24d
Create Date: 2026-12-02 03:30:00

Issue #16. An agent's list merges three sets (owners/scope.py): the leads it owns, those it collaborates on, and
the unowned leads of the properties whose team it is on. The pool's page is now read property by property
(`queries._scope_branches`), each property's unowned leads newest first. On `(org_id, property_id, created_at)`
that walk passed over every owned lead of the property (most of them, once leads get owners) to find a page of
unowned ones; this partial index holds the unowned only, so a page costs a page. A lead enters it without an
owner and leaves it when one is set; an owned lead, most new leads, is never written to it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a25p"
down_revision: str | None = "z24d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_leads_pool"


def upgrade() -> None:
    op.create_index(
        NAME,
        "leads",
        ["org_id", "property_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        postgresql_where=sa.text("owner_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="leads")
