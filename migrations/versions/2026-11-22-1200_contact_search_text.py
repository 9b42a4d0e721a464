"""contact search_text: one trigram-indexed column for GET /v1/leads?q=, kept right by triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:00:00

`contacts.search_text` is a lowercase, newline-separated list of what free-text search matches: a newline,
then the full name, "first last" when it says something else, and every identity value of the contact
(ordered, so the text is a pure function of the rows), phones also as bare digits ("+17038683162" and
"17038683162"). Every field starts after a newline, so `LIKE '%' || E'\\n' || prefix || '%'` is "a field
starts with prefix" and `LIKE '%text%'` is "any field contains text"; both use the GIN trigram index.

PostgreSQL keeps it right, whoever writes: a BEFORE trigger on contacts recomputes it when a name changes
(or anything sets search_text, which is how the identity triggers ask for a recompute), and statement
triggers on contact_identities (insert, update, delete, with transition tables) recompute the contacts whose
identities changed. A merge undo that restores a contact row from its JSON snapshot therefore ends with the
same value it started with. With session_replication_role = replica (bulk loads) triggers do not fire:
run the backfill statement below afterwards (bench/generate.py does).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = [
    r"""
CREATE FUNCTION contact_search_text(full_name text, first_name text, last_name text, identities text[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(E'\n' || concat_ws(
        E'\n',
        nullif(btrim(full_name), ''),
        CASE WHEN lower(btrim(concat_ws(' ', first_name, last_name))) IS DISTINCT FROM lower(btrim(full_name))
            THEN nullif(btrim(concat_ws(' ', first_name, last_name)), '') END,
        (SELECT string_agg(
                    CASE WHEN v ~ '^\+[0-9]+$' THEN v || E'\n' || substr(v, 2) ELSE v END, E'\n' ORDER BY v
                )
         FROM unnest(identities) AS v)
    ))
$$""",
    """
CREATE FUNCTION contacts_search_text_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_text := contact_search_text(
        NEW.full_name, NEW.first_name, NEW.last_name,
        ARRAY(SELECT i.value FROM contact_identities AS i WHERE i.contact_id = NEW.id)
    );
    RETURN NEW;
END
$$""",
    """
CREATE FUNCTION contact_identities_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- setting search_text fires contacts_search_text, which recomputes it from the rows as they are now
    IF TG_OP = 'INSERT' THEN
        UPDATE contacts SET search_text = '' WHERE id IN (SELECT contact_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE contacts SET search_text = '' WHERE id IN (SELECT contact_id FROM old_rows);
    ELSE
        UPDATE contacts SET search_text = '' WHERE id IN (
            SELECT unnest(ARRAY[o.contact_id, n.contact_id])
            FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
            WHERE (o.contact_id, o.value) IS DISTINCT FROM (n.contact_id, n.value)
        );
    END IF;
    RETURN NULL;
END
$$""",
]

TRIGGERS = [
    "CREATE TRIGGER contacts_search_text"
    " BEFORE INSERT OR UPDATE OF full_name, first_name, last_name, search_text ON contacts"
    " FOR EACH ROW EXECUTE FUNCTION contacts_search_text_row()",
    "CREATE TRIGGER contact_identities_search_text_insert"
    " AFTER INSERT ON contact_identities REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION contact_identities_search_text()",
    "CREATE TRIGGER contact_identities_search_text_update"
    " AFTER UPDATE ON contact_identities REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION contact_identities_search_text()",
    "CREATE TRIGGER contact_identities_search_text_delete"
    " AFTER DELETE ON contact_identities REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION contact_identities_search_text()",
]

# set-based (one pass over identities), for existing rows and after bulk loads that bypass triggers
BACKFILL = """
UPDATE contacts AS c SET search_text = contact_search_text(c.full_name, c.first_name, c.last_name, i.values)
FROM (
    SELECT c2.id, array_remove(array_agg(ci.value), NULL) AS values
    FROM contacts AS c2 LEFT JOIN contact_identities AS ci ON ci.contact_id = c2.id
    GROUP BY c2.id
) AS i
WHERE i.id = c.id
"""


def upgrade() -> None:
    op.add_column("contacts", sa.Column("search_text", sa.Text(), server_default=sa.text("''"), nullable=False))
    for statement in FUNCTIONS:
        op.execute(statement)
    op.execute(BACKFILL)  # before the triggers exist: one set-based pass, not a trigger per row
    for statement in TRIGGERS:
        op.execute(statement)
    # the planner picks "walk leads newest first" vs "trigram bitmap, then sort" from this column's histogram
    op.execute("ALTER TABLE contacts ALTER COLUMN search_text SET STATISTICS 1000")
    op.drop_index("ix_contacts_full_name_trgm", table_name="contacts", postgresql_using="gin")
    op.create_index(
        "ix_contacts_search_text_trgm",
        "contacts",
        ["search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_contacts_search_text_trgm", table_name="contacts", postgresql_using="gin")
    op.create_index(
        "ix_contacts_full_name_trgm",
        "contacts",
        ["full_name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"full_name": "gin_trgm_ops"},
    )
    op.execute("DROP TRIGGER contact_identities_search_text_delete ON contact_identities")
    op.execute("DROP TRIGGER contact_identities_search_text_update ON contact_identities")
    op.execute("DROP TRIGGER contact_identities_search_text_insert ON contact_identities")
    op.execute("DROP TRIGGER contacts_search_text ON contacts")
    op.execute("DROP FUNCTION contact_identities_search_text()")
    op.execute("DROP FUNCTION contacts_search_text_row()")
    op.execute("DROP FUNCTION contact_search_text(text, text, text, text[])")
    op.drop_column("contacts", "search_text")
