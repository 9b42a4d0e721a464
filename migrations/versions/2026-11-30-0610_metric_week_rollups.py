"""metrics: week rollups (cohort_w, act_w), so a funnel grouped by week reads a row per week, not per day

Revision ID: r16w
Revises: r16
Create Date: 2026-11-30 06:10:00

Migration x13 keeps day and month rows. A week straddles months, so grouping by week read a year of day
rows: the slowest metrics call at size. Two views are added, keyed by the Monday that starts the local week
(ISO weeks, in the lead's property's timezone, as the week grouping already counts):
    cohort_w  week, property, source   leads created that week, how many ever reached each stage
    act_w     week, property, source   stage entries that happened that week
They have no owner: the owner grouping already has month rows, and the week grouping has no owner filter.
The trigger functions are replaced by the same ones with the two views added, so every writer keeps the
week rows exact in its own transaction. metric_recompute (the rebuild, and the tests' oracle) recomputes
them too. Existing data gets its week rows from one set-based pass.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "r16w"
down_revision: str | None = "r16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "org_id, view, day, property_id, source, owner_id, kind"
MEASURES = ["leads", "contacted", "qualified", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost",
            "nurture", "reopened", "no_owner"]  # fmt: skip
COLUMNS = f"{KEY}, {', '.join(MEASURES)}"
ZERO = "'00000000-0000-0000-0000-000000000000'::uuid"
RANK_OF = {"contacted": 1, "tour_requested": 3, "tour_booked": 4, "toured": 5, "applied": 6, "leased": 8}
STAGE_OF = {"contacted": "contacted", "qualified": "qualified", "tour_requested": "tour_requested",
            "tour_booked": "tour_booked", "toured": "toured", "applied": "application_started", "leased": "leased",
            "lost": "lost", "nurture": "nurture", "reopened": "reopened"}  # fmt: skip
# (view, time grain, source column or None, keeps owner): x13's views, then this migration's
OLD_COHORT = [("cohort", "day", "source", True), ("last", "day", "latest_source", False),
              ("cohort_m", "month", "source", False), ("owner_m", "month", None, True),
              ("last_m", "month", "latest_source", False)]  # fmt: skip
OLD_ACTIVITY = [("activity", "day", "source", True), ("act_m", "month", "source", False),
                ("act_om", "month", None, True)]  # fmt: skip
WEEK_COHORT = [("cohort_w", "week", "source", False)]
WEEK_ACTIVITY = [("act_w", "week", "source", False)]
STAGES = "CROSS JOIN LATERAL (SELECT metric_event_stages(e.type, e.data) AS st) s"
View = tuple[str, str, str | None, bool]


def _cohort_measures(x: str, sign: str = "1", agg: bool = False) -> str:
    out = []
    for name in MEASURES:
        if name == "leads":
            one = "1"
        elif name in RANK_OF:
            one = f"({x}.reached_rank >= {RANK_OF[name]})::int"
        elif name == "lost":
            one = f"({x}.status = 'lost')::int"
        elif name == "no_owner":
            one = f"({x}.owner_id IS NULL)::int"
        else:
            out.append("0::bigint" if agg else "0")
            continue
        out.append(f"{sign} * sum({one})" if agg else f"{sign} * {one}")
    return ", ".join(out)


def _activity_measures(stages: str, sign: str = "1", agg: bool = False) -> str:
    out = []
    for name in MEASURES:
        if name in ("leads", "no_owner"):
            out.append("0::bigint" if agg else "0")
            continue
        one = f"('{STAGE_OF[name]}' = ANY({stages}))::int"
        out.append(f"{sign} * sum({one})" if agg else f"{sign} * {one}")
    return ", ".join(out)


def _grain(grain: str, at: str, tz: str) -> str:
    day = f"({at} AT TIME ZONE {tz})::date"
    return {"day": day, "week": f"date_trunc('week', {day})::date", "month": f"date_trunc('month', {day})::date"}[
        grain
    ]


def _dims(x: str, source: str | None, owner: bool) -> str:
    src = f"COALESCE({x}.{source}, '')" if source else "''"
    own = f"COALESCE({x}.owner_id, {ZERO})" if owner else ZERO
    return f"COALESCE({x}.property_id, {ZERO}), {src}, {own}, {x}.kind"


def _lead_rows(views: list[View], x: str, tz: str, sign: str) -> str:
    return ", ".join(
        f"({x}.org_id, '{view}', {_grain(grain, f'{x}.created_at', tz)}, {_dims(x, source, owner)}, "
        f"{_cohort_measures(x, sign)})"
        for view, grain, source, owner in views
    )


def _set_cohort(views: list[View], x: str, tz: str, sign: str, frm: str) -> str:
    return " UNION ALL ".join(
        f"SELECT {x}.org_id, '{view}', {_grain(grain, f'{x}.created_at', tz)}, {_dims(x, source, owner)}, "
        f"{_cohort_measures(x, sign, agg=True)} {frm} GROUP BY 1, 2, 3, 4, 5, 6, 7"
        for view, grain, source, owner in views
    )


def _set_activity(views: list[View], x: str, tz: str, sign: str, frm: str) -> str:
    return " UNION ALL ".join(
        f"SELECT {x}.org_id, '{view}', {_grain(grain, 'e.occurred_at', tz)}, {_dims(x, source, owner)}, "
        f"{_activity_measures('s.st', sign, agg=True)} {frm} GROUP BY 1, 2, 3, 4, 5, 6, 7"
        for view, grain, source, owner in views
    )


def _functions(cohort: list[View], activity: list[View]) -> list[str]:
    """x13's trigger and recompute functions over these views (CREATE OR REPLACE: same signatures)."""
    lead_scope = "FROM leads l WHERE l.org_id = p_org AND l.property_id IS NOT DISTINCT FROM p_property"
    lead_events = (
        f"FROM leads l JOIN lead_events e ON e.lead_id = l.id {STAGES} WHERE l.org_id = p_org "
        "AND l.property_id IS NOT DISTINCT FROM p_property AND e.type = 'status_changed' AND cardinality(s.st) > 0"
    )
    return [
        f"""
CREATE OR REPLACE FUNCTION metric_emit_cohort(l leads, p_tz text, p_sign int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({COLUMNS}) VALUES {_lead_rows(cohort, "l", "p_tz", "p_sign")}
$$""",
        f"""
CREATE OR REPLACE FUNCTION metric_emit_activity(l leads, p_tz text, p_sign int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({COLUMNS})
  {_set_activity(activity, "l", "p_tz", "p_sign",
                 f"FROM lead_events e {STAGES} WHERE e.lead_id = l.id AND e.type = 'status_changed' "
                 "AND cardinality(s.st) > 0")}
$$""",
        f"""
CREATE OR REPLACE FUNCTION metric_emit_event(e lead_events, p_sign int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({COLUMNS})
  {_set_activity(activity, "l", "metric_tz(l.org_id, l.property_id)", "p_sign",
                 f"FROM leads l {STAGES} WHERE l.id = e.lead_id AND cardinality(s.st) > 0")}
$$""",
        f"""
CREATE OR REPLACE FUNCTION metric_emit_leads(p_org uuid, p_property uuid, p_tz text, p_sign int) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({COLUMNS}) {_set_cohort(cohort, "l", "p_tz", "p_sign", lead_scope)};
  INSERT INTO metric_count_deltas ({COLUMNS}) {_set_activity(activity, "l", "p_tz", "p_sign", lead_events)}
$$""",
        f"""
CREATE OR REPLACE FUNCTION metric_recompute(p_org uuid) RETURNS TABLE (
  org_id uuid, view text, day date, property_id uuid, source text, owner_id uuid, kind text,
  {", ".join(f"{m} bigint" for m in MEASURES)})
LANGUAGE sql STABLE AS $$
  WITH lt AS (
    SELECT l.*, COALESCE(p.timezone, o.timezone, 'UTC') AS tz
    FROM leads l JOIN organizations o ON o.id = l.org_id LEFT JOIN properties p ON p.id = l.property_id
    WHERE l.org_id = p_org
  )
  {_set_cohort(cohort, "lt", "lt.tz", "1", "FROM lt")}
  UNION ALL
  {_set_activity(activity, "lt", "lt.tz", "1",
                 f"FROM lt JOIN lead_events e ON e.lead_id = lt.id {STAGES} WHERE e.type = 'status_changed' "
                 "AND cardinality(s.st) > 0")}
$$""",
        # i15a's statement-level INSERT trigger on leads (transition table new_leads)
        f"""
CREATE OR REPLACE FUNCTION metric_leads_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_count_deltas ({COLUMNS})
  WITH lt AS (
    SELECT l.*, COALESCE(p.timezone, o.timezone, 'UTC') AS tz
    FROM new_leads l LEFT JOIN organizations o ON o.id = l.org_id LEFT JOIN properties p ON p.id = l.property_id
  )
  {_set_cohort(cohort, "lt", "lt.tz", "1", "FROM lt")};
  RETURN NULL;
END $$""",
    ]


# existing data: the week rows of every organization, from raw rows in one pass
BACKFILL = f"""
INSERT INTO metric_counts ({COLUMNS})
WITH lt AS (
  SELECT l.*, COALESCE(p.timezone, o.timezone, 'UTC') AS tz
  FROM leads l JOIN organizations o ON o.id = l.org_id LEFT JOIN properties p ON p.id = l.property_id
)
{_set_cohort(WEEK_COHORT, "lt", "lt.tz", "1", "FROM lt")}
UNION ALL
{_set_activity(WEEK_ACTIVITY, "lt", "lt.tz", "1",
               f"FROM lt JOIN lead_events e ON e.lead_id = lt.id {STAGES} WHERE e.type = 'status_changed' "
               "AND cardinality(s.st) > 0")}
"""


def upgrade() -> None:
    for statement in _functions(OLD_COHORT + WEEK_COHORT, OLD_ACTIVITY + WEEK_ACTIVITY):
        op.execute(statement)
    op.execute(BACKFILL)


def downgrade() -> None:
    for statement in _functions(OLD_COHORT, OLD_ACTIVITY):
        op.execute(statement)
    op.execute("DELETE FROM metric_count_deltas WHERE view IN ('cohort_w', 'act_w')")
    op.execute("DELETE FROM metric_counts WHERE view IN ('cohort_w', 'act_w')")
