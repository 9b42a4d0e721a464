"""contacts: drop the trigram index on contacts.search_text, which no query reads since r16

Revision ID: z24d
Revises: y23t
Create Date: 2026-12-01 21:00:00

Issue #16. `GET /v1/leads?q=` reads the lead's own copy of the search text (migration r16: its trigram index
and the newest-first index that carries it), so `ix_contacts_search_text_trgm` has served no query since; at
1 M leads the full bench left it at 0 scans, 70 MB. Every new renter still paid for it twice: a GIN insert of
the row's ~60 trigrams, then again when the identities' trigger rewrites the contact's search text (an indexed
column, so that update could never be HOT). `contacts.search_text` stays: the triggers that keep the leads'
copy read it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "z24d"
down_revision: str | None = "y23t"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_contacts_search_text_trgm", table_name="contacts", postgresql_using="gin")


def downgrade() -> None:
    op.create_index(
        "ix_contacts_search_text_trgm",
        "contacts",
        ["search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
