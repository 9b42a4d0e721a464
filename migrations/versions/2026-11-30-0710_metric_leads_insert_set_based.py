"""metrics: the leads INSERT rollup trigger per statement (transition table) instead of per row

Revision ID: i15a
Revises: x11a
Create Date: 2026-11-30 07:10:00

The per-row trigger of x13 runs a plpgsql function and five single-row INSERTs into metric_count_deltas for
every lead: ~1.2-1.8 ms a lead on the shared 2-core host, against ~0.07 ms for the lead row itself. A
multi-row INSERT of leads (the CSV import writes up to 500 per statement) now adds its deltas in one grouped
INSERT from the statement's transition table: the same sums (readers add deltas to metric_counts), far fewer
rows. A one-row INSERT (intake, manual add) costs about what it did. UPDATE and DELETE keep their row
triggers (they need OLD and NEW of each row).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "i15a"
down_revision: str | None = "x11a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# x13's SQL builders (an applied migration is never edited, so this text is fixed)
_spec = importlib.util.spec_from_file_location("_x13", Path(__file__).with_name("2026-11-30-0310_metrics_rollups.py"))
assert _spec is not None and _spec.loader is not None
_x13 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_x13)

FUNCTION = f"""
CREATE FUNCTION metric_leads_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_count_deltas ({_x13.COLUMNS})
  WITH lt AS (
    SELECT l.*, COALESCE(p.timezone, o.timezone, 'UTC') AS tz
    FROM new_leads l LEFT JOIN organizations o ON o.id = l.org_id LEFT JOIN properties p ON p.id = l.property_id
  )
  {_x13._set_cohort("lt", "lt.tz", "1", "FROM lt")};
  RETURN NULL;
END $$"""  # noqa: S608 (our own SQL text, no input)


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute("DROP TRIGGER metric_leads_insert ON leads")
    op.execute(
        "CREATE TRIGGER metric_leads_insert AFTER INSERT ON leads REFERENCING NEW TABLE AS new_leads"
        " FOR EACH STATEMENT EXECUTE FUNCTION metric_leads_inserted()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER metric_leads_insert ON leads")
    op.execute(
        "CREATE TRIGGER metric_leads_insert AFTER INSERT ON leads FOR EACH ROW EXECUTE FUNCTION metric_leads_change()"
    )
    op.execute("DROP FUNCTION metric_leads_inserted()")
