# ruff: noqa: S608  (our own SQL text, no input)
"""metrics: triggers write one base delta per change; the fold derives coarse rollups (metric_rollups)

Revision ID: m17c
Revises: x16i
Create Date: 2026-11-30 09:10:00

Before: every lead INSERT appended 6 rows to metric_count_deltas (cohort, last, cohort_m, owner_m, last_m,
cohort_w), every tracked lead UPDATE 12, every status event 4. At 1 M leads the day rows (day x property x
source x owner x kind) hold about one row per lead, so reading them cost what raw rows cost.

Now the triggers append only *base* rows: `cohort` (one per lead, keyed by local day, property, source,
owner, kind, and carrying the lead's latest source and the timezone its day was counted in) and `activity`
(one per status event). A lead INSERT writes 1 row, a tracked UPDATE 2, a status event 1. The
`metrics_compact` fold (worker) folds them into metric_counts (the fine day rows, as before) and derives
`metric_rollups`: coarse levels keyed by timezone and a subset of (property, source or latest source, owner)
at three grains, local day (`.d`), ISO week starting Monday (`.w`), month (`.m`):

    cohort:   s, p, o, ps, po, so         last touch: ls, lps (source = latest source)
    activity: as, ap, ao, aps, apo, aso

Readers choose the smallest level that keeps what the request groups and filters by; the timezone column
lets a level without property be cut at each timezone's local days. Existing data is recomputed here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "m17c"
down_revision: str | None = "x16i"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEASURES = ["leads", "contacted", "qualified", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost",
            "nurture", "reopened", "no_owner"]  # fmt: skip
ZERO = "'00000000-0000-0000-0000-000000000000'::uuid"
RANK_OF = {"contacted": 1, "tour_requested": 3, "tour_booked": 4, "toured": 5, "applied": 6, "leased": 8}
STAGE_OF = {"contacted": "contacted", "qualified": "qualified", "tour_requested": "tour_requested",
            "tour_booked": "tour_booked", "toured": "toured", "applied": "application_started", "leased": "leased",
            "lost": "lost", "nurture": "nurture", "reopened": "reopened"}  # fmt: skip
KEY = "org_id, view, day, property_id, source, owner_id, kind"
COLUMNS = f"{KEY}, {', '.join(MEASURES)}"
BASE_KEY = "org_id, view, day, tz, property_id, source, latest_source, owner_id, kind"
BASE_COLUMNS = f"{BASE_KEY}, {', '.join(MEASURES)}"
RKEY = "org_id, view, day, tz, property_id, source, owner_id, kind"
RCOLUMNS = f"{RKEY}, {', '.join(MEASURES)}"
STAGES = "CROSS JOIN LATERAL (SELECT metric_event_stages(e.type, e.data) AS st) s"
# level: (base view, keeps property, source column: s = source, l = latest source, '' = none, keeps owner)
LEVELS = {
    "s": ("cohort", False, "s", False), "p": ("cohort", True, "", False), "o": ("cohort", False, "", True),
    "ps": ("cohort", True, "s", False), "po": ("cohort", True, "", True), "so": ("cohort", False, "s", True),
    "ls": ("cohort", False, "l", False), "lps": ("cohort", True, "l", False),
    "as": ("activity", False, "s", False), "ap": ("activity", True, "", False), "ao": ("activity", False, "", True),
    "aps": ("activity", True, "s", False), "apo": ("activity", True, "", True), "aso": ("activity", False, "s", True),
}  # fmt: skip


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


def _activity_measures(stages: str, sign: str = "1") -> str:
    out = []
    for name in MEASURES:
        if name in ("leads", "no_owner"):
            out.append("0::bigint")
            continue
        out.append(f"{sign} * sum(('{STAGE_OF[name]}' = ANY({stages}))::int)")
    return ", ".join(out)


def _dims(x: str, latest: bool) -> str:
    return (
        f"COALESCE({x}.property_id, {ZERO}), COALESCE({x}.source, ''), "
        + (f"COALESCE({x}.latest_source, '')" if latest else "''")
        + f", COALESCE({x}.owner_id, {ZERO}), {x}.kind"
    )


def _cohort_row(x: str, tz: str, sign: str) -> str:
    return (
        f"({x}.org_id, 'cohort', ({x}.created_at AT TIME ZONE {tz})::date, {tz}, {_dims(x, True)}, "
        f"{_cohort_measures(x, sign)})"
    )


def _set_cohort(x: str, tz: str, sign: str, frm: str) -> str:
    return (
        f"SELECT {x}.org_id, 'cohort', ({x}.created_at AT TIME ZONE {tz})::date, {tz}, {_dims(x, True)}, "
        f"{_cohort_measures(x, sign, agg=True)} {frm} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
    )


def _set_activity(x: str, tz: str, sign: str, frm: str) -> str:
    return (
        f"SELECT {x}.org_id, 'activity', (e.occurred_at AT TIME ZONE {tz})::date, {tz}, {_dims(x, False)}, "
        f"{_activity_measures('s.st', sign)} {frm} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
    )


LEAD_SCOPE = "FROM leads l WHERE l.org_id = p_org AND l.property_id IS NOT DISTINCT FROM p_property"
LEAD_EVENTS = (
    f"FROM leads l JOIN lead_events e ON e.lead_id = l.id {STAGES} WHERE l.org_id = p_org "
    "AND l.property_id IS NOT DISTINCT FROM p_property AND e.type = 'status_changed' AND cardinality(s.st) > 0"
)
LT = """lt AS (
    SELECT l.*, COALESCE(p.timezone, o.timezone, 'UTC') AS tz
    FROM leads l JOIN organizations o ON o.id = l.org_id LEFT JOIN properties p ON p.id = l.property_id
    WHERE l.org_id = p_org
  )"""

FUNCTIONS = [
    f"""
CREATE OR REPLACE FUNCTION metric_emit_cohort(l leads, p_tz text, p_sign int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({BASE_COLUMNS}) VALUES {_cohort_row("l", "p_tz", "p_sign")}
$$""",
    f"""
CREATE OR REPLACE FUNCTION metric_emit_activity(l leads, p_tz text, p_sign int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({BASE_COLUMNS})
  {
        _set_activity(
            "l",
            "p_tz",
            "p_sign",
            f"FROM lead_events e {STAGES} WHERE e.lead_id = l.id AND e.type = 'status_changed' "
            "AND cardinality(s.st) > 0",
        )
    }
$$""",
    f"""
CREATE OR REPLACE FUNCTION metric_emit_event(e lead_events, p_sign int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({BASE_COLUMNS})
  {
        _set_activity(
            "l",
            "metric_tz(l.org_id, l.property_id)",
            "p_sign",
            f"FROM leads l {STAGES} WHERE l.id = e.lead_id AND cardinality(s.st) > 0",
        )
    }
$$""",
    f"""
CREATE OR REPLACE FUNCTION metric_emit_leads(p_org uuid, p_property uuid, p_tz text, p_sign int) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({BASE_COLUMNS}) {_set_cohort("l", "p_tz", "p_sign", LEAD_SCOPE)};
  INSERT INTO metric_count_deltas ({BASE_COLUMNS}) {_set_activity("l", "p_tz", "p_sign", LEAD_EVENTS)}
$$""",
    f"""
CREATE OR REPLACE FUNCTION metric_leads_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_count_deltas ({BASE_COLUMNS})
  WITH lt AS (
    SELECT l.*, COALESCE(p.timezone, o.timezone, 'UTC') AS tz
    FROM new_leads l LEFT JOIN organizations o ON o.id = l.org_id LEFT JOIN properties p ON p.id = l.property_id
  )
  {_set_cohort("lt", "lt.tz", "1", "FROM lt")};
  RETURN NULL;
END $$""",
    # the base rows recomputed from raw rows: the rebuild and the tests' oracle start here
    f"""
CREATE FUNCTION metric_recompute_base(p_org uuid) RETURNS TABLE (
  org_id uuid, view text, day date, tz text, property_id uuid, source text, latest_source text, owner_id uuid,
  kind text, {", ".join(f"{m} bigint" for m in MEASURES)})
LANGUAGE sql STABLE AS $$
  WITH {LT}
  {_set_cohort("lt", "lt.tz", "1", "FROM lt")}
  UNION ALL
  {
        _set_activity(
            "lt",
            "lt.tz",
            "1",
            f"FROM lt JOIN lead_events e ON e.lead_id = lt.id {STAGES} WHERE e.type = 'status_changed' "
            "AND cardinality(s.st) > 0",
        )
    }
$$""",
    # metric_counts keeps the fine day rows of the two base views
    f"""
CREATE OR REPLACE FUNCTION metric_recompute(p_org uuid) RETURNS TABLE (
  org_id uuid, view text, day date, property_id uuid, source text, owner_id uuid, kind text,
  {", ".join(f"{m} bigint" for m in MEASURES)})
LANGUAGE sql STABLE AS $$
  SELECT {KEY}, {", ".join(f"sum({m})::bigint" for m in MEASURES)} FROM metric_recompute_base(p_org)
  GROUP BY {KEY}
$$""",
]

NONZERO = " OR ".join(f"sum({m}) <> 0" for m in MEASURES)
SUMS = ", ".join(f"sum({m})" for m in MEASURES)
# one-dimension levels are summed from a two-dimension one, weeks and months from a level's days
PARENTS = {"s": "ps", "p": "ps", "o": "po", "ls": "lps", "as": "aps", "ap": "aps", "ao": "apo"}


def _fill_rollups() -> list[str]:
    out = []
    for level in sorted(LEVELS, key=lambda name: name in PARENTS):  # parents first
        view, keeps_property, source, keeps_owner = LEVELS[level]
        prop = "property_id" if keeps_property else ZERO
        owner = "owner_id" if keeps_owner else ZERO
        if level in PARENTS:
            src = "source" if source else "''"
            frm = f"metric_rollups WHERE view = '{PARENTS[level]}.d'"
        else:
            src = {"s": "source", "l": "latest_source", "": "''"}[source]
            frm = f"metric_base WHERE view = '{view}'"
        out.append(
            f"INSERT INTO metric_rollups ({RCOLUMNS}) SELECT org_id, '{level}.d', day, tz, {prop}, {src}, {owner}, "
            f"kind, {SUMS} FROM {frm} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING {NONZERO}"
        )
        for grain, unit in (("w", "week"), ("m", "month")):
            out.append(
                f"INSERT INTO metric_rollups ({RCOLUMNS}) SELECT org_id, '{level}.{grain}', "
                f"date_trunc('{unit}', day::timestamp)::date, tz, property_id, source, owner_id, kind, {SUMS} "
                f"FROM metric_rollups WHERE view = '{level}.d' GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING {NONZERO}"
            )
    return out


def upgrade() -> None:
    op.execute("LOCK TABLE leads, lead_events IN SHARE MODE")
    op.add_column("metric_count_deltas", sa.Column("tz", sa.String(64), server_default="UTC", nullable=False))
    op.add_column("metric_count_deltas", sa.Column("latest_source", sa.String(64), server_default="", nullable=False))
    op.create_table(
        "metric_rollups",
        sa.Column(
            "org_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("view", sa.String(8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("property_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("owner_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in MEASURES],
        sa.PrimaryKeyConstraint(*[c.strip() for c in RKEY.split(",")], name="pk_metric_rollups"),
    )
    for statement in FUNCTIONS:
        op.execute(statement)
    # every organization recomputed: base rows once, then the fine day rows and the coarse levels from them
    op.execute("DELETE FROM metric_count_deltas")
    op.execute("DELETE FROM metric_counts")
    op.execute("SET LOCAL work_mem = '64MB'")
    op.execute(
        "CREATE TEMP TABLE metric_base ON COMMIT DROP AS "
        "SELECT r.* FROM organizations o CROSS JOIN LATERAL metric_recompute_base(o.id) r"
    )
    op.execute(
        f"INSERT INTO metric_counts ({COLUMNS}) SELECT {KEY}, {SUMS} FROM metric_base GROUP BY {KEY} HAVING {NONZERO}"
    )
    for statement in _fill_rollups():
        op.execute(statement)
    op.execute("DROP TABLE metric_base")
    op.execute("ANALYZE metric_counts, metric_rollups")


def downgrade() -> None:
    # x13 + r16w + i15a's functions come back with their views; the rollups are then rebuilt by
    # `guestcard metrics rebuild` (metric_recompute of r16w)
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_r16w", Path(__file__).with_name("2026-11-30-0610_metric_week_rollups.py")
    )
    assert spec is not None and spec.loader is not None
    r16w = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(r16w)
    for statement in r16w._functions(r16w.OLD_COHORT + r16w.WEEK_COHORT, r16w.OLD_ACTIVITY + r16w.WEEK_ACTIVITY):
        op.execute(statement)
    op.execute("DROP FUNCTION metric_recompute_base(uuid)")
    op.execute("DROP TABLE metric_rollups")
    op.execute("DELETE FROM metric_count_deltas")
    op.drop_column("metric_count_deltas", "latest_source")
    op.drop_column("metric_count_deltas", "tz")
    op.execute("DELETE FROM metric_counts")
    op.execute(
        f"INSERT INTO metric_counts ({COLUMNS}) SELECT r.* FROM organizations o "
        "CROSS JOIN LATERAL metric_recompute(o.id) r"
    )
