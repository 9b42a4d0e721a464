"""metrics: the timeline's INSERT rollup trigger per statement (transition table) instead of per row

Revision ID: b26e
Revises: a25p
Create Date: 2026-12-02 18:00:00

Issue #16. Every new lead writes a `status_changed` timeline entry, and the per-row trigger ran
`metric_emit_event` for each: a SQL-language function PostgreSQL plans again on every call (its plan lives
for one call), about 1 ms of the database's time per entry on the shared 2-core host. The intake batch writes
its entries in one INSERT, so 50 new leads spent ~50 ms in that trigger: a fifth of the organization's
batch, and the organization's batches are applied one at a time. One plpgsql statement trigger now adds the
whole statement's deltas in one grouped INSERT from its transition table: the same sums (readers add deltas
to metric_counts), planned once per connection. UPDATE and DELETE keep their row triggers (they need OLD
and NEW of each row), as the leads' triggers do (i15a).
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "b26e"
down_revision: str | None = "a25p"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# m17c's SQL builders (an applied migration is never edited, so this text is fixed)
_spec = importlib.util.spec_from_file_location(
    "_m17c", Path(__file__).with_name("2026-11-30-0910_metric_rollup_levels.py")
)
assert _spec is not None and _spec.loader is not None
_m17c = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_m17c)

FUNCTION = f"""
CREATE FUNCTION metric_events_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_count_deltas ({_m17c.BASE_COLUMNS})
  {
    _m17c._set_activity(
        "l",
        "metric_tz(l.org_id, l.property_id)",
        "1",
        f"FROM new_events e JOIN leads l ON l.id = e.lead_id {_m17c.STAGES} "
        "WHERE e.type = 'status_changed' AND cardinality(s.st) > 0",
    )
};
  RETURN NULL;
END $$"""  # noqa: S608 (our own SQL text, no input)


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute("DROP TRIGGER metric_events_insert ON lead_events")
    op.execute(
        "CREATE TRIGGER metric_events_insert AFTER INSERT ON lead_events REFERENCING NEW TABLE AS new_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION metric_events_inserted()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER metric_events_insert ON lead_events")
    op.execute(
        "CREATE TRIGGER metric_events_insert AFTER INSERT ON lead_events FOR EACH ROW "
        "WHEN (NEW.type = 'status_changed') EXECUTE FUNCTION metric_events_change()"
    )
    op.execute("DROP FUNCTION metric_events_inserted()")
