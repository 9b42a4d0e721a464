"""metrics: the leads' UPDATE rollup trigger per statement (transition tables) instead of per row

Revision ID: c27u
Revises: b26e
Create Date: 2026-12-03 07:00:00

Issue #16. Every automated first reply records itself on its lead (`first_response_at` and the automated one),
a batch of leads in one UPDATE. The row trigger then ran, for each lead, `metric_tz` twice and
`metric_emit_cohort` twice (the lead's old cohort row out, its new one in: the reply is part of the row's key),
each call a statement of its own: on a 200 leads/s speed-to-lead round, ~0.5 ms of the database's time per
lead, the most expensive statement of the intake path (pg_stat_statements). One plpgsql statement trigger now
writes the whole statement's deltas in one grouped INSERT from its transition tables, with exactly the rows the
row trigger wrote, summed per key: the same-key difference (a stage reached, a lead closed, a next action set),
the old row out and the new one in (a key, a time zone or a reply changed), and the lead's activity moved with
it (organization, property, source, owner or kind changed). DELETE keeps its BEFORE row trigger (it must see
the lead's events before they go); INSERT has been a statement trigger since i15a.

A statement trigger has no WHEN: the row trigger's condition (`CHANGED`) is the pairs' filter.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "c27u"
down_revision: str | None = "b26e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _load(name: str, file: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# m18r's SQL builders (an applied migration is never edited, so this text is fixed)
_m18r = _load("_m18r", "2026-11-30-1000_metric_reply_health.py")

_TZ = "COALESCE({p}.timezone, {o}.timezone, 'UTC')"  # metric_tz, as metric_leads_inserted joins it
_OLD_ROWS = "FROM pairs pr JOIN old_leads o ON o.id = pr.id"
_NEW_ROWS = "FROM pairs pr JOIN new_leads n ON n.id = pr.id"
# a lead's stage entries, read through its index for each moved lead (OFFSET 0 keeps the subquery a parameterized
# scan: flattened into a join, a plan without statistics on the transition table could hash the whole timeline)
_EVENTS = (
    "CROSS JOIN LATERAL (SELECT e.occurred_at, e.type, e.data FROM lead_events e "
    "WHERE e.lead_id = {x}.id AND e.type = 'status_changed' OFFSET 0) e {stages} WHERE cardinality(s.st) > 0"
)
_MOVED = (
    "(o.org_id, o.property_id, o.source, o.owner_id, o.kind) "
    "IS DISTINCT FROM (n.org_id, n.property_id, n.source, n.owner_id, n.kind)"
)
_PAIRS = f"""pairs AS MATERIALIZED (
    SELECT o.id,
      {_TZ.format(p="op", o="oo")} AS old_tz,
      {_TZ.format(p="np", o="no")} AS new_tz,
      ({_TZ.format(p="op", o="oo")} = {_TZ.format(p="np", o="no")}
        AND {_m18r.KEEPS.format(x="o")} IS NOT DISTINCT FROM {_m18r.KEEPS.format(x="n")}) AS same
    FROM old_leads o JOIN new_leads n ON n.id = o.id
      LEFT JOIN organizations oo ON oo.id = o.org_id LEFT JOIN properties op ON op.id = o.property_id
      LEFT JOIN organizations no ON no.id = n.org_id LEFT JOIN properties np ON np.id = n.property_id
    WHERE {{where}}
  )"""


def _difference() -> str:
    new, old = _m18r._cohort_list("n"), _m18r._cohort_list("o")
    return ", ".join(f"sum(({a}) - ({b}))" for a, b in zip(new, old, strict=True))


FUNCTION = f"""
CREATE FUNCTION metric_leads_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM new_leads) THEN  -- an UPDATE that matched no lead (a statement trigger still runs)
    RETURN NULL;
  END IF;
  INSERT INTO metric_count_deltas ({_m18r.BASE_COLUMNS})
  WITH {_PAIRS.format(where=f"{_m18r.TRACKED.format(x='o')} IS DISTINCT FROM {_m18r.TRACKED.format(x='n')}")}
  SELECT n.org_id, 'cohort', (n.created_at AT TIME ZONE pr.new_tz)::date, pr.new_tz, {_m18r._dims("n", True)},
    NULL::int, NULL::int, NULL::int, 0::bigint, 0::bigint, 0::bigint, {_difference()}
  FROM pairs pr JOIN old_leads o ON o.id = pr.id JOIN new_leads n ON n.id = pr.id WHERE pr.same
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
  UNION ALL
  {_m18r._set_cohort("o", "pr.old_tz", "-1", f"{_OLD_ROWS} WHERE NOT pr.same")}
  UNION ALL
  {_m18r._set_cohort("n", "pr.new_tz", "1", f"{_NEW_ROWS} WHERE NOT pr.same")};
  -- a lead that moved (organization, property, source, owner, kind) takes its stage entries along: rare
  IF EXISTS (SELECT 1 FROM old_leads o JOIN new_leads n ON n.id = o.id WHERE {_MOVED}) THEN
    INSERT INTO metric_count_deltas ({_m18r.ACTIVITY_COLUMNS})
    WITH {_PAIRS.format(where=_MOVED)}
    {_m18r._set_activity("o", "pr.old_tz", "-1", f"{_OLD_ROWS} {_EVENTS.format(x='o', stages=_m18r.STAGES)}")}
    UNION ALL
    {_m18r._set_activity("n", "pr.new_tz", "1", f"{_NEW_ROWS} {_EVENTS.format(x='n', stages=_m18r.STAGES)}")};
  END IF;
  RETURN NULL;
END $$"""  # noqa: S608 (our own SQL text, no input)


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute("DROP TRIGGER metric_leads_update ON leads")
    op.execute(
        "CREATE TRIGGER metric_leads_update AFTER UPDATE ON leads"
        " REFERENCING OLD TABLE AS old_leads NEW TABLE AS new_leads"
        " FOR EACH STATEMENT EXECUTE FUNCTION metric_leads_updated()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER metric_leads_update ON leads")
    op.execute(_m18r.UPDATE_TRIGGER)
    op.execute("DROP FUNCTION metric_leads_updated()")
