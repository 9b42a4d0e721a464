"""contact_identities.contact_id: a deferrable foreign key, so a bulk writer can insert identities first

Revision ID: i15b
Revises: r16w
Create Date: 2026-11-30 07:40:00

`contacts.search_text` (migration 0003) is computed by the contacts row trigger from the contact's identity
rows, and the identity statement triggers recompute it for the contacts whose identities changed. A writer
that inserts a new contact and then its identities therefore writes the contact twice: the INSERT (names
only), then an UPDATE from the identities trigger (a second heap tuple and a second trigram index entry).
The CSV import writes hundreds of new contacts a statement; with the foreign key DEFERRABLE (INITIALLY
IMMEDIATE, so every other writer sees no change) it runs `SET CONSTRAINTS … DEFERRED` and inserts the
identities before their contacts: the identities trigger finds no contact row to update, and the contacts
row trigger computes the full value once, from the identities already there. No trigger changes, so every
other writer keeps exactly the search_text it had; the reference is still checked, at commit.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "i15b"
down_revision: str | None = "r16w"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_contact_identities_contact_id_contacts"


def upgrade() -> None:
    op.execute(f"ALTER TABLE contact_identities ALTER CONSTRAINT {FK} DEFERRABLE INITIALLY IMMEDIATE")


def downgrade() -> None:
    op.execute(f"ALTER TABLE contact_identities ALTER CONSTRAINT {FK} NOT DEFERRABLE")
