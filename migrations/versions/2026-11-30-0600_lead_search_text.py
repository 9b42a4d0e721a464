"""leads.search_text: the contact's search text on the lead itself, so GET /v1/leads?q= reads one table

Revision ID: r16
Revises: h16a
Create Date: 2026-11-30 06:00:00

A search used to match contacts and join their leads. A common term then walked leads newest first with
one contact lookup per lead (p99 0.7 s at 1 M leads). The lead now carries a copy of
`contacts.search_text` (migration 0003), trigram-indexed, and the newest-first index carries it too
(INCLUDE). A common term walks that index alone (no heap page per lead, which cost ~10 µs a lead on a
loaded host) and stops at the page. A rare one takes the trigram index and sorts the few leads it finds.
The copy is capped at 2,000 bytes: a btree entry holds at most ~2,700. That is about 60 identities; a
contact with more is matched on the first ones.

PostgreSQL keeps the copy right, whoever writes:
- a BEFORE trigger on leads copies the contact's text when a lead is inserted, moves to another contact
  (merge, undo), or anything sets search_text;
- an AFTER trigger on contacts pushes a changed text to the contact's leads. Names, identities and erasure
  all end in a contacts.search_text change (0003's triggers).

Bulk loads with session_replication_role = replica skip the triggers; run BACKFILL afterwards
(bench/generate.py does).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r16"
down_revision: str | None = "h16a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = [
    """
CREATE FUNCTION lead_search_text(full_text text) RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    capped text := left(COALESCE(full_text, ''), 2000);
BEGIN
    WHILE octet_length(capped) > 2000 LOOP  -- multibyte names: trim by bytes, a few characters at a time
        capped := left(capped, length(capped) - 16);
    END LOOP;
    RETURN capped;
END
$$""",
    """
CREATE FUNCTION leads_search_text_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_text := lead_search_text((SELECT c.search_text FROM contacts AS c WHERE c.id = NEW.contact_id));
    RETURN NEW;
END
$$""",
    """
CREATE FUNCTION contacts_search_text_to_leads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE leads SET search_text = lead_search_text(NEW.search_text)
    WHERE contact_id = NEW.id AND search_text IS DISTINCT FROM lead_search_text(NEW.search_text);
    RETURN NULL;
END
$$""",
]

TRIGGERS = [
    "CREATE TRIGGER leads_search_text BEFORE INSERT OR UPDATE OF contact_id, search_text ON leads"
    " FOR EACH ROW EXECUTE FUNCTION leads_search_text_row()",
    # no "OF search_text": 0003's BEFORE trigger changes it when only a name was set
    "CREATE TRIGGER contacts_search_text_to_leads AFTER UPDATE ON contacts FOR EACH ROW"
    " WHEN (OLD.search_text IS DISTINCT FROM NEW.search_text) EXECUTE FUNCTION contacts_search_text_to_leads()",
]

BACKFILL = """
UPDATE leads AS l SET search_text = lead_search_text(c.search_text)
FROM contacts AS c
WHERE c.id = l.contact_id AND l.search_text IS DISTINCT FROM lead_search_text(c.search_text)
"""


def upgrade() -> None:
    op.add_column("leads", sa.Column("search_text", sa.Text(), server_default=sa.text("''"), nullable=False))
    op.execute(FUNCTIONS[0])
    op.execute(BACKFILL)  # before the triggers: one set-based pass
    for statement in FUNCTIONS[1:] + TRIGGERS:
        op.execute(statement)
    # the planner picks "walk leads newest first" vs "trigram bitmap, then sort" from this column's histogram
    op.execute("ALTER TABLE leads ALTER COLUMN search_text SET STATISTICS 1000")
    op.create_index(
        "ix_leads_search_text_trgm",
        "leads",
        ["search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    # newest first with the search text at hand: replaces the same index without it
    op.create_index(
        "ix_leads_org_id_created_at_id_search",
        "leads",
        ["org_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        postgresql_include=["search_text"],
    )
    op.drop_index("ix_leads_org_id_created_at_id", table_name="leads")


def downgrade() -> None:
    op.create_index(
        "ix_leads_org_id_created_at_id",
        "leads",
        ["org_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )
    op.drop_index("ix_leads_org_id_created_at_id_search", table_name="leads")
    op.drop_index("ix_leads_search_text_trgm", table_name="leads", postgresql_using="gin")
    op.execute("DROP TRIGGER contacts_search_text_to_leads ON contacts")
    op.execute("DROP TRIGGER leads_search_text ON leads")
    op.execute("DROP FUNCTION contacts_search_text_to_leads()")
    op.execute("DROP FUNCTION leads_search_text_row()")
    op.execute("DROP FUNCTION lead_search_text(text)")
    op.drop_column("leads", "search_text")
