# ruff: noqa: S608  (our own SQL text, no input)
"""metrics: reply-time histograms and open-lead counters folded from the same base rows

Revision ID: m18r
Revises: m17c
Create Date: 2026-11-30 10:00:00

Response time read its whole window of leads (percentiles need every value) and health counted every open
lead; at 1 M leads that was 266 ms and 55 ms. Both now come from the base rows the triggers already write:

- The `cohort` base row (one per lead, keyed by its local creation day) also carries the lead's three first
  replies (automated, human, any) as a log-spaced bucket (`metric_reply_bucket`: bucket widths <= 2 %,
  boundaries exactly at 60 s, 5 min, 15 min, 1 h, 4 h, 24 h) and its delay in milliseconds. The fold sums
  them into `metric_reply_rollups` (levels n, s, p, o: none, source, property, owner; grains d, w, m) as a
  count and a millisecond sum per bucket: a median or p90 is read from the bucket means.
- Four more measures on every base row: open leads, and of those without owner, without next action, and
  with a next action due date (health: overdue = with due date - due at or after now, an index range scan).

The leads UPDATE trigger now also fires when a first reply is recorded or a lead opens/closes, gains or loses
its next action or due date. A new lead still writes one row. Existing data is recomputed here.
"""

import importlib.util
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "m18r"
down_revision: str | None = "m17c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _load(name: str, file: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OLD = ["leads", "contacted", "qualified", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost",
       "nurture", "reopened", "no_owner"]  # fmt: skip
NEW = ["open_leads", "open_no_owner", "open_no_action", "open_due"]
MEASURES = OLD + NEW
ZERO = "'00000000-0000-0000-0000-000000000000'::uuid"
RANK_OF = {"contacted": 1, "tour_requested": 3, "tour_booked": 4, "toured": 5, "applied": 6, "leased": 8}
STAGE_OF = {"contacted": "contacted", "qualified": "qualified", "tour_requested": "tour_requested",
            "tour_booked": "tour_booked", "toured": "toured", "applied": "application_started", "leased": "leased",
            "lost": "lost", "nurture": "nurture", "reopened": "reopened"}  # fmt: skip
KEY = "org_id, view, day, property_id, source, owner_id, kind"
REPLY = "reply_a, reply_h, reply_f, reply_a_ms, reply_h_ms, reply_f_ms"
BASE_KEY = "org_id, view, day, tz, property_id, source, latest_source, owner_id, kind"
BASE_COLUMNS = f"{BASE_KEY}, {REPLY}, {', '.join(MEASURES)}"
ACTIVITY_COLUMNS = f"{BASE_KEY}, {', '.join(OLD)}"  # activity rows: no replies, no open counters
STAGES = "CROSS JOIN LATERAL (SELECT metric_event_stages(e.type, e.data) AS st) s"
OPEN = "{x}.status NOT IN ('lost', 'leased')"
REPLIES = ("first_automated_response_at", "first_human_response_at", "first_response_at")

# Reply buckets: 0 holds delays <= 0.1 s (and replies recorded before the lead); then each segment (a, b] between
# the edges below is cut into m log-spaced buckets of ratio (b/a)^(1/m) <= GAMMA; above 24 h, ratio GAMMA up to
# ten years. Bucket k holds (UPPER[k-1], UPPER[k]]. services/api/metrics/replies.py holds the same numbers (a
# test checks they agree). One use of the argument, no FROM: PostgreSQL inlines it into the caller.
GAMMA = 1.02
EDGES = (0.1, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
CEILING = 86400.0 * 3653


def _uppers() -> list[float]:
    out = [EDGES[0]]
    for a, b in itertools.pairwise(EDGES):
        m = math.ceil(math.log(b / a) / math.log(GAMMA))
        out += [a * (b / a) ** (k / m) for k in range(1, m)] + [b]
    top = math.ceil(math.log(CEILING / EDGES[-1]) / math.log(GAMMA))
    return out + [EDGES[-1] * GAMMA**k for k in range(1, top + 1)]


def bucket_function() -> str:
    uppers = _uppers()
    # width_bucket counts the bounds <= its operand; over the negated bounds that is how many upper bounds lie
    # at or above the delay, so N minus it is the delay's bucket (the first upper bound >= the delay)
    negated = ",".join(repr(-u) for u in reversed(uppers))
    return f"""
CREATE FUNCTION metric_reply_bucket(p_seconds double precision) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT {len(uppers)} - width_bucket(-p_seconds, '{{{negated}}}'::double precision[])
$$"""


def _delay(x: str, column: str) -> str:
    return f"extract(epoch FROM {x}.{column} - {x}.created_at)::double precision"


def _reply(x: str, sign: str, agg: bool) -> tuple[str, str]:
    """(the three buckets, the three signed millisecond delays) of lead `x`."""
    buckets = ", ".join(f"metric_reply_bucket({_delay(x, c)})" for c in REPLIES)
    ms = [f"COALESCE(round(1000 * GREATEST({_delay(x, c)}, 0))::bigint, 0)" for c in REPLIES]
    return buckets, ", ".join(f"{sign} * sum({m})" if agg else f"{sign} * {m}" for m in ms)


def _cohort_measures(x: str, sign: str = "1", agg: bool = False) -> str:
    return ", ".join(_cohort_list(x, sign, agg))


def _cohort_list(x: str, sign: str = "1", agg: bool = False) -> list[str]:
    out = []
    is_open = OPEN.format(x=x)
    for name in MEASURES:
        if name == "leads":
            one = "1"
        elif name in RANK_OF:
            one = f"({x}.reached_rank >= {RANK_OF[name]})::int"
        elif name == "lost":
            one = f"({x}.status = 'lost')::int"
        elif name == "no_owner":
            one = f"({x}.owner_id IS NULL)::int"
        elif name == "open_leads":
            one = f"({is_open})::int"
        elif name == "open_no_owner":
            one = f"({is_open} AND {x}.owner_id IS NULL)::int"
        elif name == "open_no_action":
            one = f"({is_open} AND {x}.next_action_type IS NULL)::int"
        elif name == "open_due":
            one = f"({is_open} AND {x}.next_action_due_at IS NOT NULL)::int"
        else:
            out.append("0::bigint" if agg else "0")
            continue
        out.append(f"{sign} * sum({one})" if agg else f"{sign} * {one}")
    return out


def _activity_measures(stages: str, sign: str = "1") -> str:
    out = []
    for name in OLD:
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
    buckets, ms = _reply(x, sign, agg=False)
    return (
        f"({x}.org_id, 'cohort', ({x}.created_at AT TIME ZONE {tz})::date, {tz}, {_dims(x, True)}, {buckets}, {ms}, "
        f"{_cohort_measures(x, sign)})"
    )


def _set_cohort(x: str, tz: str, sign: str, frm: str) -> str:
    buckets, ms = _reply(x, sign, agg=True)
    return (
        f"SELECT {x}.org_id, 'cohort', ({x}.created_at AT TIME ZONE {tz})::date, {tz}, {_dims(x, True)}, {buckets}, "
        f"{ms}, {_cohort_measures(x, sign, agg=True)} {frm} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"
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
# what a lead's cohort row depends on: its key, its funnel measures, its open counters, its replies
TRACKED = (
    "({x}.org_id, {x}.created_at, {x}.property_id, {x}.source, {x}.latest_source, {x}.owner_id, {x}.kind, "
    "{x}.reached_rank, {x}.status = 'lost', {x}.status = 'leased', {x}.next_action_type IS NULL, "
    "{x}.next_action_due_at IS NULL, {x}.first_automated_response_at, {x}.first_human_response_at, "
    "{x}.first_response_at)"
)
CHANGED = f"{TRACKED.format(x='OLD')} IS DISTINCT FROM {TRACKED.format(x='NEW')}"
# a change that keeps the row's key and replies (a stage reached, lost, opened, a next action set or cleared) is
# one row holding the difference of the measures instead of the old row out and the new one in
KEEPS = (
    "({x}.org_id, {x}.created_at, {x}.property_id, {x}.source, {x}.latest_source, {x}.owner_id, {x}.kind, "
    "{x}.first_automated_response_at, {x}.first_human_response_at, {x}.first_response_at)"
)
SAME_KEY = f"{KEEPS.format(x='OLD')} IS NOT DISTINCT FROM {KEEPS.format(x='NEW')}"


def _difference() -> str:
    new, old = _cohort_list("n"), _cohort_list("o")
    return ", ".join(f"({a}) - ({b})" for a, b in zip(new, old, strict=True))

FUNCTIONS = [
    # plpgsql, not sql: its INSERT is planned once per session (a SQL function called from a trigger is parsed and
    # planned on every call, and inlining metric_reply_bucket's bounds made that ~1 ms a row)
    f"""
CREATE OR REPLACE FUNCTION metric_emit_cohort(l leads, p_tz text, p_sign int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_count_deltas ({BASE_COLUMNS}) VALUES {_cohort_row("l", "p_tz", "p_sign")};
END $$""",
    f"""
CREATE FUNCTION metric_emit_cohort_change(o leads, n leads, p_tz text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_count_deltas ({BASE_KEY}, {", ".join(MEASURES)})
  VALUES (n.org_id, 'cohort', (n.created_at AT TIME ZONE p_tz)::date, p_tz, {_dims("n", True)}, {_difference()});
END $$""",
    f"""
CREATE OR REPLACE FUNCTION metric_emit_leads(p_org uuid, p_property uuid, p_tz text, p_sign int) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO metric_count_deltas ({BASE_COLUMNS}) {_set_cohort("l", "p_tz", "p_sign", LEAD_SCOPE)};
  INSERT INTO metric_count_deltas ({ACTIVITY_COLUMNS}) {_set_activity("l", "p_tz", "p_sign", LEAD_EVENTS)}
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
    f"""
CREATE OR REPLACE FUNCTION metric_leads_change() RETURNS trigger LANGUAGE plpgsql AS $$
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
  IF NOT ({CHANGED}) THEN
    NULL;
  ELSIF old_tz = new_tz AND {SAME_KEY} THEN
    PERFORM metric_emit_cohort_change(OLD, NEW, new_tz);
  ELSE
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
    f"""
CREATE FUNCTION metric_recompute_base(p_org uuid) RETURNS TABLE (
  org_id uuid, view text, day date, tz text, property_id uuid, source text, latest_source text, owner_id uuid,
  kind text, reply_a int, reply_h int, reply_f int, reply_a_ms bigint, reply_h_ms bigint, reply_f_ms bigint,
  {", ".join(f"{m} bigint" for m in MEASURES)})
LANGUAGE sql STABLE AS $$
  WITH {LT}
  {_set_cohort("lt", "lt.tz", "1", "FROM lt")}
  UNION ALL
  SELECT org_id, view, day, tz, property_id, source, latest_source, owner_id, kind, NULL, NULL, NULL, 0, 0, 0,
    {", ".join(OLD)}, {", ".join("0" for _ in NEW)} FROM (
  {
        _set_activity(
            "lt",
            "lt.tz",
            "1",
            f"FROM lt JOIN lead_events e ON e.lead_id = lt.id {STAGES} WHERE e.type = 'status_changed' "
            "AND cardinality(s.st) > 0",
        )
    }) a (org_id, view, day, tz, property_id, source, latest_source, owner_id, kind, {", ".join(OLD)})
$$""",
    f"""
CREATE FUNCTION metric_recompute(p_org uuid) RETURNS TABLE (
  org_id uuid, view text, day date, property_id uuid, source text, owner_id uuid, kind text,
  {", ".join(f"{m} bigint" for m in MEASURES)})
LANGUAGE sql STABLE AS $$
  SELECT {KEY}, {", ".join(f"sum({m})::bigint" for m in MEASURES)} FROM metric_recompute_base(p_org)
  GROUP BY {KEY}
$$""",
]

# -- the recomputation (a frozen copy of services/api/metrics/rollups.py + replies.py at this revision) ---------
RKEY = "org_id, view, day, tz, property_id, source, owner_id, kind"
SUMS = ", ".join(f"sum({m})" for m in MEASURES)
NONZERO = " OR ".join(f"sum({m}) <> 0" for m in MEASURES)
LEVELS = {
    "s": ("cohort", False, "s", False), "p": ("cohort", True, "", False), "o": ("cohort", False, "", True),
    "ps": ("cohort", True, "s", False), "po": ("cohort", True, "", True), "so": ("cohort", False, "s", True),
    "ls": ("cohort", False, "l", False), "lps": ("cohort", True, "l", False),
    "as": ("activity", False, "s", False), "ap": ("activity", True, "", False), "ao": ("activity", False, "", True),
    "aps": ("activity", True, "s", False), "apo": ("activity", True, "", True), "aso": ("activity", False, "s", True),
}  # fmt: skip
PARENTS = {"s": "ps", "p": "ps", "o": "po", "ls": "lps", "as": "aps", "ap": "aps", "ao": "apo"}
REPLY_LEVELS = {"n": (False, False, False), "s": (False, True, False), "p": (True, False, False),
                "o": (False, False, True)}  # fmt: skip
RRKEY = f"{RKEY}, bucket"
RMEASURES = ("automated", "human", "first", "automated_ms", "human_ms", "first_ms")
RSUMS = ", ".join(f"sum({m})" for m in RMEASURES)
RNONZERO = " OR ".join(f"sum({m}) <> 0" for m in RMEASURES)
EXPAND = (
    "CROSS JOIN LATERAL (VALUES (COALESCE(b.reply_a, -1), b.leads, 0, 0, b.reply_a_ms, 0::bigint, 0::bigint), "
    "(COALESCE(b.reply_h, -1), 0, b.leads, 0, 0::bigint, b.reply_h_ms, 0::bigint), "
    "(COALESCE(b.reply_f, -1), 0, 0, b.leads, 0::bigint, 0::bigint, b.reply_f_ms)) "
    "x(bucket, automated, human, first, automated_ms, human_ms, first_ms)"
)


def _rebuild() -> list[str]:
    out = [
        "CREATE TEMP TABLE metric_base ON COMMIT DROP AS "
        "SELECT r.* FROM organizations o CROSS JOIN LATERAL metric_recompute_base(o.id) r",
        f"INSERT INTO metric_counts ({KEY}, {', '.join(MEASURES)}) SELECT {KEY}, {SUMS} FROM metric_base "
        f"GROUP BY {KEY} HAVING {NONZERO}",
    ]
    into = f"INSERT INTO metric_rollups ({RKEY}, {', '.join(MEASURES)})"
    for level in sorted(LEVELS, key=lambda name: name in PARENTS):  # parents first
        view, keeps_property, source, keeps_owner = LEVELS[level]
        prop = "property_id" if keeps_property else ZERO
        owner = "owner_id" if keeps_owner else ZERO
        if level in PARENTS:
            src, frm = ("source" if source else "''"), f"metric_rollups WHERE view = '{PARENTS[level]}.d'"
        else:
            src = {"s": "source", "l": "latest_source", "": "''"}[source]
            frm = f"metric_base WHERE view = '{view}'"
        out.append(
            f"{into} SELECT org_id, '{level}.d', day, tz, {prop}, {src}, {owner}, kind, {SUMS} FROM {frm} "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING {NONZERO}"
        )
    rinto = f"INSERT INTO metric_reply_rollups ({RRKEY}, {', '.join(RMEASURES)})"
    for level in ("s", "p", "o"):
        p, s, o = REPLY_LEVELS[level]
        out.append(
            f"{rinto} SELECT b.org_id, '{level}.d', b.day, b.tz, {'b.property_id' if p else ZERO}, "
            f"{'b.source' if s else chr(39) * 2}, {'b.owner_id' if o else ZERO}, b.kind, x.bucket, "
            f"{', '.join(f'sum(x.{m})' for m in RMEASURES)} FROM metric_base b {EXPAND} WHERE b.view = 'cohort' "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 HAVING {' OR '.join(f'sum(x.{m}) <> 0' for m in RMEASURES)}"
        )
    out.append(
        f"{rinto} SELECT org_id, 'n.d', day, tz, property_id, '', owner_id, kind, bucket, {RSUMS} "
        f"FROM metric_reply_rollups WHERE view = 's.d' GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 HAVING {RNONZERO}"
    )
    for table, levels, sums, nonzero, key in (
        ("metric_rollups", LEVELS, SUMS, NONZERO, RKEY),
        ("metric_reply_rollups", REPLY_LEVELS, RSUMS, RNONZERO, RRKEY),
    ):
        columns = key.replace("view, day", "'{level}.{grain}', date_trunc('{unit}', day::timestamp)::date")
        for level in levels:
            for grain, unit in (("w", "week"), ("m", "month")):
                picked = columns.format(level=level, grain=grain, unit=unit)
                group = ", ".join(str(i + 1) for i in range(len(key.split(","))))
                out.append(
                    f"INSERT INTO {table} SELECT {picked}, {sums} FROM {table} WHERE view = '{level}.d' "
                    f"GROUP BY {group} HAVING {nonzero}"
                )
    out.append("DROP TABLE metric_base")
    return out


UPDATE_TRIGGER = (
    f"CREATE TRIGGER metric_leads_update AFTER UPDATE ON leads FOR EACH ROW WHEN ({CHANGED}) "
    "EXECUTE FUNCTION metric_leads_change()"
)
OPEN_INDEX = "ix_leads_metrics_open"
OPEN_WHERE = "status NOT IN ('lost', 'leased')"


def _reply_table() -> None:
    op.create_table(
        "metric_reply_rollups",
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
        sa.Column("bucket", sa.Integer(), nullable=False),
        *[
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in ("automated", "human", "first", "automated_ms", "human_ms", "first_ms")
        ],
        sa.PrimaryKeyConstraint(
            "org_id", "view", "day", "tz", "property_id", "source", "owner_id", "kind", "bucket",
            name="pk_metric_reply_rollups",
        ),  # fmt: skip
    )


def upgrade() -> None:
    op.execute("LOCK TABLE leads, lead_events IN SHARE MODE")
    for name in ("reply_a", "reply_h", "reply_f"):
        op.add_column("metric_count_deltas", sa.Column(name, sa.Integer(), nullable=True))
    for name in ("reply_a_ms", "reply_h_ms", "reply_f_ms"):
        op.add_column("metric_count_deltas", sa.Column(name, sa.BigInteger(), server_default="0", nullable=False))
    for name in NEW:
        op.add_column("metric_count_deltas", sa.Column(name, sa.Integer(), server_default="0", nullable=False))
        for table in ("metric_counts", "metric_rollups"):
            op.add_column(table, sa.Column(name, sa.BigInteger(), server_default="0", nullable=False))
    _reply_table()
    op.execute(bucket_function())
    op.execute("DROP FUNCTION metric_recompute(uuid)")
    op.execute("DROP FUNCTION metric_recompute_base(uuid)")
    for statement in FUNCTIONS:
        op.execute(statement)
    op.execute("DROP TRIGGER metric_leads_update ON leads")
    op.execute(UPDATE_TRIGGER)
    # health's "overdue": open leads with a due date at or after now, a short range scan from the index alone
    op.drop_index(OPEN_INDEX, table_name="leads")
    op.create_index(
        OPEN_INDEX,
        "leads",
        ["org_id", "next_action_due_at"],
        postgresql_include=["property_id", "source", "kind", "owner_id", "next_action_type"],
        postgresql_where=sa.text(OPEN_WHERE),
    )
    # every organization recomputed
    op.execute("DELETE FROM metric_count_deltas")
    op.execute("DELETE FROM metric_counts")
    op.execute("DELETE FROM metric_rollups")
    op.execute("SET LOCAL work_mem = '64MB'")
    for statement in _rebuild():
        op.execute(statement)
    op.execute("ANALYZE metric_counts, metric_rollups, metric_reply_rollups")


def downgrade() -> None:
    m17c = _load("_m17c", "2026-11-30-0910_metric_rollup_levels.py")
    x13 = _load("_x13", "2026-11-30-0310_metrics_rollups.py")
    op.drop_index(OPEN_INDEX, table_name="leads")
    op.create_index(
        OPEN_INDEX,
        "leads",
        ["org_id", "property_id"],
        postgresql_include=["owner_id", "next_action_type", "next_action_due_at"],
        postgresql_where=sa.text(OPEN_WHERE),
    )
    op.execute("DROP TRIGGER metric_leads_update ON leads")
    op.execute(next(t for t in x13.TRIGGERS if "metric_leads_update" in t))
    op.execute(
        next(f for f in x13.FUNCTIONS if "metric_leads_change()" in f).replace(
            "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
        )
    )
    op.execute("DROP FUNCTION metric_recompute(uuid)")
    op.execute("DROP FUNCTION metric_recompute_base(uuid)")
    op.execute("DROP FUNCTION metric_emit_cohort_change(leads, leads, text)")
    for statement in m17c.FUNCTIONS:
        op.execute(statement)
    op.execute("DROP FUNCTION metric_reply_bucket(double precision)")
    op.drop_table("metric_reply_rollups")
    for name in NEW:
        for table in ("metric_count_deltas", "metric_counts", "metric_rollups"):
            op.drop_column(table, name)
    for name in ("reply_a", "reply_h", "reply_f", "reply_a_ms", "reply_h_ms", "reply_f_ms"):
        op.drop_column("metric_count_deltas", name)
