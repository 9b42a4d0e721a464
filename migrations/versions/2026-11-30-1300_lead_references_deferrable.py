"""Every foreign key to leads.id: DEFERRABLE INITIALLY IMMEDIATE, so an intake batch writes a new lead once

Revision ID: d18l
Revises: m18r
Create Date: 2026-11-30 13:00:00

An intake batch (services/api/signals/batch.py) creates a lead and, in the same signal, the rows that point
at it: its events, the automation log, scheduled steps, the outbox, notifications, tasks. With immediate
foreign keys the lead had to be flushed before the first of them, while its next action was still unknown,
so it was written twice: an INSERT, then an UPDATE that set the next action (a non-HOT update: a second heap
tuple and an entry in every index of `leads`). The batch now runs `SET CONSTRAINTS … DEFERRED` and writes the
lead once, with its next action; the references are still checked, at commit. INITIALLY IMMEDIATE: every
other writer sees no change.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d18l"
down_revision: str | None = "m18r"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALTER_ALL = """
DO $$
DECLARE c record;
BEGIN
    FOR c IN
        SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
        WHERE contype = 'f' AND confrelid = 'leads'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER CONSTRAINT %I {clause}', c.tbl, c.conname);
    END LOOP;
END $$
"""


def upgrade() -> None:
    op.execute(ALTER_ALL.format(clause="DEFERRABLE INITIALLY IMMEDIATE"))


def downgrade() -> None:
    op.execute(ALTER_ALL.format(clause="NOT DEFERRABLE"))
