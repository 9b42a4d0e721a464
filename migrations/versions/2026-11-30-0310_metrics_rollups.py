"""metrics v2: exact rollups kept by triggers (metric_counts + metric_count_deltas), source spend, health indexes

Every write that changes what a funnel metric counts appends signed rows to metric_count_deltas in the
writer's own transaction (insert-only: no hot row, no deadlock); the metrics_compact cron job folds them into
metric_counts. Readers sum both. Rebuild: `guestcard metrics rebuild` (metric_recompute(org)).

Revision ID: x13
Revises: o09
Create Date: 2026-11-30 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "x13"
down_revision: str | None = "o09"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "org_id, view, day, property_id, source, owner_id, kind"
# What each rollup row counts, per view (key columns a view does not keep hold '' / the zero uuid):
#   cohort    day,   property, source,      owner  leads created that day, how many ever reached each stage
#   last      day,   property, last source         the same, credited to the last-touch source
#   cohort_m  month, property, source              cohort by local month (no owner: small)
#   owner_m   month, property, owner               cohort by local month and owner
#   last_m    month, property, last source
#   activity  day,   property, source,      owner  stage entries that happened that day
#   act_m     month, property, source
#   act_om    month, property, owner
MEASURES = ["leads", "contacted", "qualified", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost",
            "nurture", "reopened", "no_owner"]  # fmt: skip
ZERO = "'00000000-0000-0000-0000-000000000000'::uuid"
RANK_OF = {"contacted": 1, "tour_requested": 3, "tour_booked": 4, "toured": 5, "applied": 6, "leased": 8}
STAGE_OF = {"contacted": "contacted", "qualified": "qualified", "tour_requested": "tour_requested",
            "tour_booked": "tour_booked", "toured": "toured", "applied": "application_started", "leased": "leased",
            "lost": "lost", "nurture": "nurture", "reopened": "reopened"}  # fmt: skip
COLUMNS = f"{KEY}, {', '.join(MEASURES)}"
# (view, time grain, source column or None, keeps owner)
COHORT_VIEWS = [("cohort", "day", "source", True), ("last", "day", "latest_source", False),
                ("cohort_m", "month", "source", False), ("owner_m", "month", None, True),
                ("last_m", "month", "latest_source", False)]  # fmt: skip
ACTIVITY_VIEWS = [("activity", "day", "source", True), ("act_m", "month", "source", False),
                  ("act_om", "month", None, True)]  # fmt: skip


def _cohort_measures(x: str, sign: str = "1", agg: bool = False) -> str:
    """A lead's cohort measures: 1 lead, reached at least each stage, lost now, without owner now."""
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
    return day if grain == "day" else f"date_trunc('month', {day})::date"


def _dims(x: str, source: str | None, owner: bool) -> str:
    src = f"COALESCE({x}.{source}, '')" if source else "''"
    own = f"COALESCE({x}.owner_id, {ZERO})" if owner else ZERO
    return f"COALESCE({x}.property_id, {ZERO}), {src}, {own}, {x}.kind"


def _lead_rows(x: str, tz: str, sign: str) -> str:
    """VALUES: a lead's row in every cohort view."""
    return ", ".join(
        f"({x}.org_id, '{view}', {_grain(grain, f'{x}.created_at', tz)}, {_dims(x, source, owner)}, "
        f"{_cohort_measures(x, sign)})"
        for view, grain, source, owner in COHORT_VIEWS
    )


def _set_cohort(x: str, tz: str, sign: str, frm: str) -> str:
    """Set-based: the cohort views over leads `x` (FROM/WHERE in `frm`)."""
    return " UNION ALL ".join(
        f"SELECT {x}.org_id, '{view}', {_grain(grain, f'{x}.created_at', tz)}, {_dims(x, source, owner)}, "
        f"{_cohort_measures(x, sign, agg=True)} {frm} GROUP BY 1, 2, 3, 4, 5, 6, 7"
        for view, grain, source, owner in COHORT_VIEWS
    )


def _set_activity(x: str, tz: str, sign: str, frm: str) -> str:
    """Set-based: the activity views over events `e` of leads `x` with stages `s.st` (FROM/WHERE in `frm`)."""
    return " UNION ALL ".join(
        f"SELECT {x}.org_id, '{view}', {_grain(grain, 'e.occurred_at', tz)}, {_dims(x, source, owner)}, "
        f"{_activity_measures('s.st', sign, agg=True)} {frm} GROUP BY 1, 2, 3, 4, 5, 6, 7"
        for view, grain, source, owner in ACTIVITY_VIEWS
    )


STAGES = "CROSS JOIN LATERAL (SELECT metric_event_stages(e.type, e.data) AS st) s"

FUNCTIONS = [
    # the timezone a lead's days are counted in: its property's, else its organization's
    """
CREATE FUNCTION metric_tz(p_org uuid, p_property uuid) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT COALESCE((SELECT timezone FROM properties WHERE id = p_property),
                  (SELECT timezone FROM organizations WHERE id = p_org), 'UTC')
$$""",
    # the stages a timeline event enters (activity view); a jump straight to application_submitted counts
    # as an application started; leaving lost also counts as a reopen
    """
CREATE FUNCTION metric_event_stages(p_type text, p_data jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_type = 'status_changed' AND p_data->>'to' IS NOT NULL THEN
      ARRAY[CASE WHEN p_data->>'to' = 'application_submitted'
                  AND COALESCE(p_data->>'from', '') <> 'application_started'
                 THEN 'application_started' ELSE p_data->>'to' END]
      || CASE WHEN p_data->>'from' = 'lost' AND p_data->>'to' <> 'lost' THEN ARRAY['reopened']
              ELSE ARRAY[]::text[] END
    ELSE ARRAY[]::text[] END
$$""",
    f"""
CREATE FUNCTION metric_emit_cohort(l leads, p_tz text, p_sign int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({COLUMNS}) VALUES {_lead_rows("l", "p_tz", "p_sign")}
$$""",
    f"""
CREATE FUNCTION metric_emit_activity(l leads, p_tz text, p_sign int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({COLUMNS})
  {_set_activity("l", "p_tz", "p_sign",
                 f"FROM lead_events e {STAGES} WHERE e.lead_id = l.id AND e.type = 'status_changed' "
                 "AND cardinality(s.st) > 0")}
$$""",
    f"""
CREATE FUNCTION metric_emit_event(e lead_events, p_sign int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({COLUMNS})
  {_set_activity("l", "metric_tz(l.org_id, l.property_id)", "p_sign",
                 f"FROM leads l {STAGES} WHERE l.id = e.lead_id AND cardinality(s.st) > 0")}
$$""",
    """
CREATE FUNCTION metric_leads_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_tz text;
  new_tz text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM metric_emit_cohort(NEW, metric_tz(NEW.org_id, NEW.property_id), 1);
    RETURN NULL;
  END IF;
  old_tz := metric_tz(OLD.org_id, OLD.property_id);
  IF TG_OP = 'DELETE' THEN  -- BEFORE DELETE: the lead's events are still there to subtract
    PERFORM metric_emit_cohort(OLD, old_tz, -1);
    PERFORM metric_emit_activity(OLD, old_tz, -1);
    RETURN OLD;
  END IF;
  new_tz := metric_tz(NEW.org_id, NEW.property_id);
  IF (OLD.org_id, OLD.created_at, OLD.property_id, OLD.source, OLD.latest_source, OLD.owner_id, OLD.kind,
      OLD.reached_rank, OLD.status = 'lost')
     IS DISTINCT FROM
     (NEW.org_id, NEW.created_at, NEW.property_id, NEW.source, NEW.latest_source, NEW.owner_id, NEW.kind,
      NEW.reached_rank, NEW.status = 'lost') THEN
    PERFORM metric_emit_cohort(OLD, old_tz, -1);
    PERFORM metric_emit_cohort(NEW, new_tz, 1);
  END IF;
  IF (OLD.org_id, OLD.property_id, OLD.source, OLD.owner_id, OLD.kind)
     IS DISTINCT FROM (NEW.org_id, NEW.property_id, NEW.source, NEW.owner_id, NEW.kind) THEN
    PERFORM metric_emit_activity(OLD, old_tz, -1);
    PERFORM metric_emit_activity(NEW, new_tz, 1);
  END IF;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION metric_events_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.type = 'status_changed' THEN
    PERFORM metric_emit_event(OLD, -1);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.type = 'status_changed' THEN
    PERFORM metric_emit_event(NEW, 1);
  END IF;
  RETURN NULL;
END $$""",
    # a timezone change moves every day of the leads counted in it
    f"""
CREATE FUNCTION metric_emit_leads(p_org uuid, p_property uuid, p_tz text, p_sign int) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({COLUMNS})
  {_set_cohort("l", "p_tz", "p_sign", "FROM leads l WHERE l.org_id = p_org AND l.property_id IS NOT DISTINCT FROM p_property")};
  INSERT INTO metric_count_deltas ({COLUMNS})
  {_set_activity("l", "p_tz", "p_sign",
                 f"FROM leads l JOIN lead_events e ON e.lead_id = l.id {STAGES} WHERE l.org_id = p_org "
                 "AND l.property_id IS NOT DISTINCT FROM p_property AND e.type = 'status_changed' "
                 "AND cardinality(s.st) > 0")}
$$""",
    """
CREATE FUNCTION metric_property_tz_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM metric_emit_leads(NEW.org_id, NEW.id, OLD.timezone, -1);
  PERFORM metric_emit_leads(NEW.org_id, NEW.id, NEW.timezone, 1);
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION metric_org_tz_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM metric_emit_leads(NEW.id, NULL, OLD.timezone, -1);
  PERFORM metric_emit_leads(NEW.id, NULL, NEW.timezone, 1);
  RETURN NULL;
END $$""",
    # the recomputation from raw rows (the rebuild, and the test oracle)
    f"""
CREATE FUNCTION metric_recompute(p_org uuid) RETURNS TABLE (
  org_id uuid, view text, day date, property_id uuid, source text, owner_id uuid, kind text,
  {", ".join(f"{m} bigint" for m in MEASURES)})
LANGUAGE sql STABLE AS $$
  WITH lt AS (
    SELECT l.*, COALESCE(p.timezone, o.timezone, 'UTC') AS tz
    FROM leads l JOIN organizations o ON o.id = l.org_id LEFT JOIN properties p ON p.id = l.property_id
    WHERE l.org_id = p_org
  )
  {_set_cohort("lt", "lt.tz", "1", "FROM lt")}
  UNION ALL
  {_set_activity("lt", "lt.tz", "1",
                 f"FROM lt JOIN lead_events e ON e.lead_id = lt.id {STAGES} WHERE e.type = 'status_changed' "
                 "AND cardinality(s.st) > 0")}
$$""",
]

TRIGGERS = [
    "CREATE TRIGGER metric_leads_insert AFTER INSERT ON leads FOR EACH ROW EXECUTE FUNCTION metric_leads_change()",
    "CREATE TRIGGER metric_leads_update AFTER UPDATE ON leads FOR EACH ROW WHEN ("
    "(OLD.org_id, OLD.created_at, OLD.property_id, OLD.source, OLD.latest_source, OLD.owner_id, OLD.kind, "
    "OLD.reached_rank, OLD.status = 'lost') IS DISTINCT FROM (NEW.org_id, NEW.created_at, NEW.property_id, "
    "NEW.source, NEW.latest_source, NEW.owner_id, NEW.kind, NEW.reached_rank, NEW.status = 'lost')) "
    "EXECUTE FUNCTION metric_leads_change()",
    "CREATE TRIGGER metric_leads_delete BEFORE DELETE ON leads FOR EACH ROW EXECUTE FUNCTION metric_leads_change()",
    "CREATE TRIGGER metric_events_insert AFTER INSERT ON lead_events FOR EACH ROW "
    "WHEN (NEW.type = 'status_changed') EXECUTE FUNCTION metric_events_change()",
    "CREATE TRIGGER metric_events_update AFTER UPDATE ON lead_events FOR EACH ROW "
    "WHEN ((OLD.type = 'status_changed' OR NEW.type = 'status_changed') AND "
    "(OLD.lead_id, OLD.type, OLD.occurred_at, OLD.data) IS DISTINCT FROM "
    "(NEW.lead_id, NEW.type, NEW.occurred_at, NEW.data)) EXECUTE FUNCTION metric_events_change()",
    "CREATE TRIGGER metric_events_delete AFTER DELETE ON lead_events FOR EACH ROW "
    "WHEN (OLD.type = 'status_changed') EXECUTE FUNCTION metric_events_change()",
    "CREATE TRIGGER metric_property_tz AFTER UPDATE OF timezone ON properties FOR EACH ROW "
    "WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone) EXECUTE FUNCTION metric_property_tz_change()",
    "CREATE TRIGGER metric_org_tz AFTER UPDATE OF timezone ON organizations FOR EACH ROW "
    "WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone) EXECUTE FUNCTION metric_org_tz_change()",
]

DROP = [
    "DROP TRIGGER IF EXISTS metric_org_tz ON organizations",
    "DROP TRIGGER IF EXISTS metric_property_tz ON properties",
    "DROP TRIGGER IF EXISTS metric_events_delete ON lead_events",
    "DROP TRIGGER IF EXISTS metric_events_update ON lead_events",
    "DROP TRIGGER IF EXISTS metric_events_insert ON lead_events",
    "DROP TRIGGER IF EXISTS metric_leads_delete ON leads",
    "DROP TRIGGER IF EXISTS metric_leads_update ON leads",
    "DROP TRIGGER IF EXISTS metric_leads_insert ON leads",
    "DROP FUNCTION IF EXISTS metric_recompute(uuid)",
    "DROP FUNCTION IF EXISTS metric_org_tz_change()",
    "DROP FUNCTION IF EXISTS metric_property_tz_change()",
    "DROP FUNCTION IF EXISTS metric_emit_leads(uuid, uuid, text, int)",
    "DROP FUNCTION IF EXISTS metric_events_change()",
    "DROP FUNCTION IF EXISTS metric_leads_change()",
    "DROP FUNCTION IF EXISTS metric_emit_event(lead_events, int)",
    "DROP FUNCTION IF EXISTS metric_emit_activity(leads, text, int)",
    "DROP FUNCTION IF EXISTS metric_emit_cohort(leads, text, int)",
    "DROP FUNCTION IF EXISTS metric_event_stages(text, jsonb)",
    "DROP FUNCTION IF EXISTS metric_tz(uuid, uuid)",
]


def _key_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("view", sa.String(8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("property_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("owner_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
    ]


def _measures(kind: type) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, kind(), nullable=False) for name in MEASURES]


def _org() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "org_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "metric_counts",
        _org(),
        *_key_columns(),
        *_measures(sa.BigInteger),
        sa.PrimaryKeyConstraint(*[c.strip() for c in KEY.split(",")], name="pk_metric_counts"),
    )
    op.create_table(
        "metric_count_deltas",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        _org(),
        *_key_columns(),
        *_measures(sa.Integer),
    )
    op.create_index("ix_metric_count_deltas_org_id_view_day", "metric_count_deltas", ["org_id", "view", "day"])
    op.create_table(
        "source_spend",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        _org(),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), server_default="USD", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_source_spend_org_id", "source_spend", ["org_id"])
    op.create_index("uq_source_spend_org_id_source_month", "source_spend", ["org_id", "source", "month"], unique=True)
    # health: open leads per property with what "slipping" reads, answered from the index alone
    op.create_index(
        "ix_leads_metrics_open",
        "leads",
        ["org_id", "property_id"],
        postgresql_include=["owner_id", "next_action_type", "next_action_due_at"],
        postgresql_where=sa.text("status NOT IN ('lost', 'leased')"),
    )
    for statement in FUNCTIONS + TRIGGERS:
        op.execute(statement)
    # existing rows: one rebuild per organization (a fresh install has none)
    op.execute(
        f"INSERT INTO metric_counts ({COLUMNS}) SELECT r.* FROM organizations o "
        "CROSS JOIN LATERAL metric_recompute(o.id) r"
    )


def downgrade() -> None:
    for statement in DROP:
        op.execute(statement)
    op.drop_index("ix_leads_metrics_open", table_name="leads")
    op.drop_table("source_spend")
    op.drop_table("metric_count_deltas")
    op.drop_table("metric_counts")
