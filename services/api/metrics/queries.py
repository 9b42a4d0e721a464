# ruff: noqa: S608  (SQL is assembled from constant fragments; every value a caller sends is a bind parameter)
"""Metrics v2 queries: funnel (cohort and activity), attribution, response time, health.

Funnel and attribution read *facts*: rows of (local day, property, source, latest source, owner, kind, stage,
reached rank, state, n). For an organization-wide caller the facts are the rollups (metric_counts +
metric_count_deltas) for every local day wholly inside the window, plus raw rows for the partial days at its
two edges (a window is an interval of instants; rollup days are local days in the property's timezone). For
a restricted caller, or `exact=raw`, the facts are the raw rows. Both give the same answer; tests and the
bench compare them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.leads.status import FUNNEL_RANK
from services.api.metrics.replies import TRAILING_LEVELS, TRAILING_SPANS
from services.api.metrics.rollups import LEVELS
from services.api.metrics.scope import LeadScope
from shared import clock
from shared.enums import LeadStatus
from shared.normalize import ANONYMOUS_CALLER_REASON
from shared.working_hours import WorkingHours

ZERO = "00000000-0000-0000-0000-000000000000"
NO_ID = uuid.UUID(ZERO)
GROUPS = ("source", "property", "owner", "week", "month", "none")
# where an ignored anonymous call's property is read from (intake stores the resolved property on the row)
# intake records the property of an ignored anonymous call on the row (inbound_messages.property_id)
ANON_PROPERTY_SQL = "COALESCE(im.property_id, NULLIF(im.signal->'property'->>'property_id', '')::uuid)"
ANONYMOUS_REASON = ANONYMOUS_CALLER_REASON

S = LeadStatus
RANKS = {
    "contacted": FUNNEL_RANK[S.contacted],
    "tour_requested": FUNNEL_RANK[S.tour_requested],
    "tour_booked": FUNNEL_RANK[S.tour_booked],
    "toured": FUNNEL_RANK[S.toured],
    "applied": FUNNEL_RANK[S.application_started],
    "leased": FUNNEL_RANK[S.leased],
}
ACTIVITY_STAGES = {
    "contacted": "contacted",
    "qualified": "qualified",
    "tour_requested": "tour_requested",
    "tour_booked": "tour_booked",
    "toured": "toured",
    "applied": "application_started",
    "leased": "leased",
    "lost": "lost",
    "nurture": "nurture",
    "reopened": "reopened",
}


@dataclass(frozen=True)
class Filter:
    org_id: uuid.UUID
    start: datetime
    end: datetime
    scope: LeadScope
    property_id: uuid.UUID | None = None
    source: str | None = None
    kind: str | None = None
    raw: bool = False  # force the raw path (bench, tests)

    @property
    def use_rollups(self) -> bool:
        return not self.raw and not self.scope.restricted

    def params(self) -> dict[str, Any]:
        return {
            "org": self.org_id,
            "start": self.start,
            "end": self.end,
            "dmin": (self.start - timedelta(days=1)).date(),
            "dmax": (self.end + timedelta(days=2)).date(),
            "property": self.property_id,
            "source": self.source,
            "kind": self.kind,
            "now": clock.now(),
            **self.scope.params,
        }

    def rollup_where(self) -> str:
        sql = ""
        if self.property_id is not None:
            sql += " AND property_id = :property"
        if self.source is not None:
            sql += " AND source = :source"
        if self.kind is not None:
            sql += " AND kind = :kind"
        return sql

    def lead_where(self, source_column: str = "source") -> str:
        sql = ""
        if self.property_id is not None:
            sql += " AND l.property_id = :property"
        if self.source is not None:
            sql += f" AND l.{source_column} = :source"
        if self.kind is not None:
            sql += " AND l.kind = :kind"
        return sql + self.scope.where()


MEASURES = ("leads", "contacted", "qualified", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost",
            "nurture", "reopened", "no_owner")  # fmt: skip
RANK_OF = {"contacted": 1, "tour_requested": 3, "tour_booked": 4, "toured": 5, "applied": 6, "leased": 8}


def _bounds(whole_last_day: bool = False) -> str:
    """`whole_last_day` (response time): a window ending inside a local day that is otherwise whole reads that
    day from the rollups and subtracts the leads from `end` on (rolled.py), when that side is the cheaper one: the
    end is still to come (`:now`, the app clock: nothing after it yet) or lies in the day's second half. Exact
    either way."""
    flip = (
        "CASE WHEN t.t_end <> time '00:00' AND t.d_end >= t.dlo AND (CAST(:end AS timestamptz) > "
        "CAST(:now AS timestamptz) OR t.t_end >= time '12:00') THEN 1 ELSE 0 END"
    )
    dhi = f"t.d_end + {flip}" if whole_last_day else "t.d_end"
    return f"""zones AS (
  SELECT p.id AS property_id, p.timezone AS tz FROM properties p WHERE p.org_id = :org
  UNION ALL SELECT '{ZERO}'::uuid, o.timezone FROM organizations o WHERE o.id = :org
), tzb AS (
  SELECT t.tz, t.dlo, {dhi} AS dhi FROM (SELECT z.tz,
    CASE WHEN (CAST(:start AS timestamptz) AT TIME ZONE z.tz)::time = time '00:00'
         THEN (CAST(:start AS timestamptz) AT TIME ZONE z.tz)::date
         ELSE (CAST(:start AS timestamptz) AT TIME ZONE z.tz)::date + 1 END AS dlo,
    (CAST(:end AS timestamptz) AT TIME ZONE z.tz)::date AS d_end,
    (CAST(:end AS timestamptz) AT TIME ZONE z.tz)::time AS t_end
  FROM (SELECT DISTINCT tz FROM zones) z) t
), bounds AS (
  SELECT z.property_id, t.tz, t.dlo, t.dhi FROM zones z JOIN tzb t ON t.tz = z.tz
)"""


# Per timezone in play (each property's, the organization's for leads without one): the local days wholly
# inside [start, end) (dlo <= day < dhi). Rollup rows of those days are read; every other lead or event in the
# window is read raw.
BOUNDS = _bounds()


def _monday_le(d: str) -> str:
    return f"date_trunc('week', ({d})::timestamp)::date"


def _monday_ge(d: str) -> str:
    return _monday_le(f"({d}) + 6")


def _split(a: str, b: str) -> list[tuple[str, str, str]]:
    """[a, b) as (grain, lo, hi) pieces: its whole local weeks, and the days before and after them."""
    w0 = _monday_ge(a)
    w1 = f"GREATEST({_monday_le(b)}, {w0})"
    d1 = f"LEAST({w0}, {b})"
    return [("w", w0, w1), ("d", a, d1), ("d", f"GREATEST({w1}, {d1})", b)]


def _days(a: str, b: str) -> list[tuple[str, str, str]]:
    return [("d", a, b)]


def _pieces(name: str, frm: str, pieces: list[tuple[str, str, str]]) -> str:
    union = " UNION ALL ".join(
        f"SELECT tz, '{grain}' AS grain, {lo} AS lo, {hi} AS hi FROM {frm}" for grain, lo, hi in pieces
    )
    return f"{name} AS (SELECT * FROM ({union}) x WHERE lo < hi)"


def _signed(name: str, split: Any, margin: int, pm: str = "pm", pr: str = "pr", trailing: bool = False) -> str:
    """(tz, grain, lo, hi, sign) pieces: the whole months, and each partial month as its month minus the days
    outside the window (split by `split`) when those plus `margin` are fewer than the days inside (a month's rows
    cost about `margin` days' rows), else its days inside. With `trailing` (`pm` / `pr` then cover the days
    before the trailing window `pt` names, where there is one): that window (lo, hi: the days it sums) and the
    window's days after it."""
    cover = f"(a - ms) + (me - b) + {margin} < b - a"
    kept = (
        (1, "pt", [("('t' || span)", "e - span + 1", "e + 1")]),
        (1, "pt JOIN tzb USING (tz)", [("d", "e + 1", "dhi")]),
    )
    union = " UNION ALL ".join(
        f"SELECT tz, {grain if grain.startswith('(') else repr(grain)} AS grain, {lo} AS lo, {hi} AS hi, "
        f"{sign} AS sign FROM {frm}"
        for sign, frm, parts in (
            (1, pm, [("m", "m0", "m1")]),
            (1, f"{pr} WHERE NOT {cover}", split("a", "b")),
            (1, f"{pr} WHERE {cover}", [("m", "ms", "me")]),
            (-1, f"{pr} WHERE {cover}", [*split("ms", "a"), *split("b", "me")]),
            *(kept if trailing else ()),
        )
        for grain, lo, hi in parts
    )
    return f"{name} AS (SELECT * FROM ({union}) x WHERE lo < hi)"


def _months(pm: str, pr: str, days: str) -> str:
    """`pm`: per timezone of `days` (tz, dlo, dhi: whole local days [dlo, dhi)) its whole months [m0, m1) and the
    partial months' ends (h1: the first one's end, t0: the last one's start); `pr`: each partial month's days
    [a, b) inside its month [ms, me)."""
    return (
        f"{pm} AS (SELECT tz, dlo, dhi, m0, GREATEST(m0, m1) AS m1, LEAST(m0, dhi) AS h1, "
        "GREATEST(m1, LEAST(m0, dhi)) AS t0 "
        "FROM (SELECT tz, dlo, dhi, (date_trunc('month', (dlo - 1)::timestamp) + interval '1 month')::date AS m0, "
        f"date_trunc('month', dhi::timestamp)::date AS m1 FROM {days}) m), "
        f"{pr} AS (SELECT tz, a, b, ms, (ms + interval '1 month')::date AS me FROM (SELECT tz, a, b, "
        "date_trunc('month', a::timestamp)::date AS ms "
        f"FROM (SELECT tz, dlo AS a, h1 AS b FROM {pm} UNION ALL SELECT tz, t0, dhi FROM {pm}) e) m)"
    )


# What a month's reply rows cost in days of rows, per reply level (1 M leads, 120 properties, 60 owners, 13
# sources: a property's month holds ~150 rows, its day ~12): each level's signed pieces weigh them so
MONTH_IN_DAYS = {"n": 2, "s": 4, "p": 12, "o": 12}


# How the whole local days [dlo, dhi) of each timezone are read from the coarse levels, as (tz, grain, lo, hi)
# pieces: `pieces_m` takes the whole local months, then in the partial months at either end (each inside one
# month, so its weeks never straddle a month) the whole weeks, then the other days; `pieces_w` (the week
# grouping: months straddle weeks) takes the whole weeks, then the other days.
# `pieces_<level>` (signed, for the reply histograms, one per level) reads a partial month at either end as its
# month row minus the days of the month outside the window (weeks and days at level n, days at the others:
# replies.LEVEL_GRAINS) when those plus the month's cost in days (MONTH_IN_DAYS) are fewer than the days inside,
# else its days inside. A 30-day window ending today: one month row set, instead of four weeks and a day (at the
# property level a month holds ~60 % of the rows of its four weeks). Sums of counts and milliseconds: exact
# either way.
# `trailing_<level>` (replies.TRAILING_LEVELS): where the organization keeps a trailing window (30 or 365 local
# days, metric_reply_trailing) ending inside the window's whole days and starting at or after its first one, the
# longest such (`pt`): its rows, the window's days after it (none yet when it ends today), and the days before it
# read as `pieces_<level>` reads a window (`tzr`, `pmr`, `prr`).
TRAILING = (
    "pt AS (SELECT t.tz, k.day AS e, w.span FROM tzb t "
    "JOIN metric_reply_trailing k ON k.org_id = :org AND k.tz = t.tz "
    "CROSS JOIN LATERAL (SELECT max(v.span) AS span FROM (VALUES "
    + ", ".join(f"({span})" for span in TRAILING_SPANS)
    + ") v(span) WHERE k.day - v.span + 1 >= t.dlo) w "
    "WHERE k.day < t.dhi AND w.span IS NOT NULL), "
    "tzr AS (SELECT t.tz, t.dlo, COALESCE(pt.e - pt.span + 1, t.dhi) AS dhi FROM tzb t LEFT JOIN pt USING (tz)), "
    + _months("pmr", "prr", "tzr")
    + ", "
    + ", ".join(
        _signed(f"trailing_{level}", _days, MONTH_IN_DAYS[level], "pmr", "prr", trailing=True)
        for level in TRAILING_LEVELS
    )
)
PIECES = (
    _months("pm", "pr", "tzb")
    + ", "
    + _pieces("pieces_m", "pm", [("m", "m0", "m1"), *_split("dlo", "h1"), *_split("t0", "dhi")])
    + ", "
    + _pieces("pieces_w", "tzb", _split("dlo", "dhi"))
    + ", "
    + ", ".join(
        _signed(f"pieces_{level}", _split if level == "n" else _days, margin) for level, margin in MONTH_IN_DAYS.items()
    )
    + ", "
    + TRAILING
)
PROPERTY = f"COALESCE(l.property_id, '{ZERO}'::uuid) AS property_id"
IN_FULL_DAYS = "(({at} AT TIME ZONE b.tz)::date >= b.dlo AND ({at} AT TIME ZONE b.tz)::date < b.dhi)"
# a lead's timezone bounds: through its property (a table with statistics) to the one row of its timezone
LEAD_BOUNDS = (
    "LEFT JOIN properties lp ON lp.id = l.property_id "
    "JOIN tzb b ON b.tz = COALESCE(lp.timezone, (SELECT o.timezone FROM organizations o WHERE o.id = :org))"
)
# Raw rows are read only around the partial local days: before the last timezone's first whole day starts, and
# after the first timezone's last whole day ends (3 hours earlier, for a midnight repeated by a DST change).
# Every row in between lies in whole days of every timezone; NOT IN_FULL_DAYS settles each row read.
EDGE_LO = "(SELECT LEAST(max(dlo::timestamp AT TIME ZONE tz), CAST(:end AS timestamptz)) FROM tzb)"
EDGE_HI = "(SELECT min(dhi::timestamp AT TIME ZONE tz) - interval '3 hours' FROM tzb)"


def with_bounds(sql: str, whole_last_day: bool = False) -> str:
    return f"WITH {_bounds(whole_last_day) if whole_last_day else BOUNDS}, {PIECES} {sql}"


def _edges(f: Filter, raw: Any, column: str) -> str:
    """Raw rows of the partial local days at the window's two edges: two tight range scans."""
    spans = [(":start", EDGE_LO), (f"GREATEST({EDGE_HI}, {EDGE_LO})", ":end")]
    return " UNION ALL ".join(raw(lo, hi) + " AND NOT " + IN_FULL_DAYS.format(at=column) for lo, hi in spans)


def _cohort_raw(f: Filter, view: str, lo: str = ":start", hi: str = ":end") -> str:
    source, owner = (
        ("source", f"COALESCE(l.owner_id, '{ZERO}'::uuid)")
        if view == "cohort"
        else ("latest_source", f"'{ZERO}'::uuid")
    )
    measures = []
    for name in MEASURES:
        if name == "leads":
            measures.append("1 AS leads")
        elif name in RANK_OF:
            measures.append(f"(l.reached_rank >= {RANK_OF[name]})::int AS {name}")
        elif name == "lost":
            measures.append("(l.status = 'lost')::int AS lost")
        elif name == "no_owner":
            measures.append("(l.owner_id IS NULL)::int AS no_owner")
        else:
            measures.append(f"0 AS {name}")
    return (
        f"SELECT (l.created_at AT TIME ZONE b.tz)::date AS day, {PROPERTY}, "
        f"COALESCE(l.{source}, '') AS source, {owner} AS owner_id, l.kind AS kind, {', '.join(measures)} "
        f"FROM leads l {LEAD_BOUNDS} "
        f"WHERE l.org_id = :org AND l.created_at >= {lo} AND l.created_at < {hi}" + f.lead_where(source)
    )


FACT_COLUMNS = "day, property_id, source, owner_id, kind, " + ", ".join(MEASURES)


def _fine(f: Filter, view: str) -> str:
    """The fine day rows (property x source x owner x kind) of every whole local day in the window: what the
    coarse levels cannot answer (the owner grouping or filter with both a property and a source)."""
    picked = ", ".join("r." + c.strip() for c in FACT_COLUMNS.split(","))
    where = (
        f"org_id = :org AND view = '{view}' AND day >= (SELECT min(dlo) FROM tzb) AND day < (SELECT max(dhi) FROM tzb)"
        + f.rollup_where()
    )
    rows = (
        f"SELECT {FACT_COLUMNS} FROM metric_counts WHERE {where} "
        f"UNION ALL SELECT {FACT_COLUMNS} FROM metric_count_deltas WHERE {where}"
    )
    return (
        f"SELECT {picked} FROM ({rows}) r JOIN bounds b ON b.property_id = r.property_id "
        "WHERE r.day >= b.dlo AND r.day < b.dhi"
    )


def level_for(f: Filter, view: str, group_by: str) -> str | None:
    """The smallest coarse level (rollups.LEVELS) keeping what this request groups and filters by; None: the
    fine day rows."""
    need = set({"source": "s", "property": "p", "owner": "o"}.get(group_by, ""))
    need |= {"p"} if f.property_id is not None else set()
    need |= {"s"} if f.source is not None else set()
    prefix = {"cohort": "", "last": "l", "activity": "a"}[view]
    for dims in ("s", "p", "o", "ps", "so", "po"):
        if need <= set(dims) and prefix + dims in LEVELS:
            return prefix + dims
    return None


def _coarse(f: Filter, level: str, group_by: str) -> str:
    """The whole local days of the window from a coarse level: rollup rows (metric_rollups) plus the base deltas
    not yet folded, mapped to the level's key; one index range scan per piece (month, weeks, days)."""
    base, keeps_property, source, keeps_owner = LEVELS[level]
    pieces = "pieces_w" if group_by == "week" else "pieces_m"
    source_column = {"s": "d.source", "l": "d.latest_source", "": "''"}[source]
    day = (
        "CASE pc.grain WHEN 'd' THEN d.day "
        f"WHEN 'w' THEN {_monday_le('d.day')} ELSE date_trunc('month', d.day::timestamp)::date END"
    )
    delta_where = ""
    if f.property_id is not None:
        delta_where += " AND d.property_id = :property"
    if f.source is not None:
        delta_where += f" AND {source_column} = :source"
    if f.kind is not None:
        delta_where += " AND d.kind = :kind"
    measures = ", ".join(MEASURES)
    prop = "d.property_id" if keeps_property else f"'{ZERO}'::uuid"
    owner = "d.owner_id" if keeps_owner else f"'{ZERO}'::uuid"
    return (
        f"SELECT x.day, x.property_id, x.source, x.owner_id, x.kind, {', '.join('x.' + m for m in MEASURES)} "
        f"FROM {pieces} pc CROSS JOIN LATERAL ("
        f"SELECT r.day, r.property_id, r.source, r.owner_id, r.kind, {measures} FROM metric_rollups r "
        f"WHERE r.org_id = :org AND r.view = '{level}.' || pc.grain AND r.tz = pc.tz AND r.day >= pc.lo "
        f"AND r.day < pc.hi{f.rollup_where()} "
        f"UNION ALL SELECT {day}, {prop}, {source_column}, {owner}, d.kind, {measures} FROM metric_count_deltas d "
        f"WHERE d.org_id = :org AND d.view = '{base}' AND d.tz = pc.tz AND d.day >= pc.lo AND d.day < pc.hi"
        f"{delta_where}) x"
    )


def _rolled(f: Filter, view: str, group_by: str) -> str:
    level = level_for(f, view, group_by)
    if level is None:
        if view == "last":  # every last-touch request (source, property, kind) has a level
            raise ValueError("no rollup level for this last-touch request")
        return _fine(f, view)
    return _coarse(f, level, group_by)


def cohort_facts(f: Filter, view: str = "cohort", group_by: str = "week") -> str:
    """Leads created in the window, one fact row per lead (raw) or per rollup key (needs the `bounds` CTE).
    view `last` keys them by the last-touch source (owner not kept)."""
    if not f.use_rollups:
        return _cohort_raw(f, view)
    edges = _edges(f, lambda lo, hi: _cohort_raw(f, view, lo, hi), "l.created_at")
    return _rolled(f, view, group_by) + " UNION ALL " + edges


def activity_facts(f: Filter, group_by: str = "week") -> str:
    """Stage entries that happened in the window (needs the `bounds` CTE)."""
    measures = []
    for name in MEASURES:
        if name in ("leads", "no_owner"):
            measures.append(f"0 AS {name}")
        else:
            measures.append(f"('{ACTIVITY_STAGES[name]}' = ANY(s.st))::int AS {name}")

    def raw(lo: str = ":start", hi: str = ":end") -> str:
        return (
            f"SELECT (e.occurred_at AT TIME ZONE b.tz)::date AS day, {PROPERTY}, "
            f"COALESCE(l.source, '') AS source, COALESCE(l.owner_id, '{ZERO}'::uuid) AS owner_id, l.kind AS kind, "
            f"{', '.join(measures)} "
            f"FROM lead_events e JOIN leads l ON l.id = e.lead_id {LEAD_BOUNDS} "
            "CROSS JOIN LATERAL (SELECT metric_event_stages(e.type, e.data) AS st) s "
            f"WHERE e.org_id = :org AND e.type = 'status_changed' AND e.occurred_at >= {lo} "
            f"AND e.occurred_at < {hi} AND cardinality(s.st) > 0" + f.lead_where()
        )

    if not f.use_rollups:
        return raw()
    return _rolled(f, "activity", group_by) + " UNION ALL " + _edges(f, raw, "e.occurred_at")


def group_key(group_by: str) -> str:
    return {
        "source": "COALESCE(NULLIF(f.source, ''), 'unknown')",
        "property": f"CASE WHEN f.property_id = '{ZERO}'::uuid THEN 'none' ELSE f.property_id::text END",
        "owner": f"CASE WHEN f.owner_id = '{ZERO}'::uuid THEN 'unassigned' ELSE f.owner_id::text END",
        "week": """to_char(date_trunc('week', f.day), 'IYYY-"W"IW')""",
        "month": "to_char(f.day, 'YYYY-MM')",
        "none": "'all'",
    }[group_by]


async def _facts_query(session: AsyncSession, sql: str, f: Filter, sorted_groups: bool = False) -> Any:
    """Run a funnel / attribution statement. Over the rollups its text depends only on the grouping and which
    filters are set (every value is a bind parameter), and planning its many small pieces costs more than
    running them: a generic plan, prepared once per pooled connection, serves every later call. A generic
    plan's estimates are coarse; JIT (which their cost would trigger) stays off for the transaction's rest.
    `sorted_groups`: aggregate by sorting, not hashing, for this statement (response time's histogram cells are
    grouped twice, the second time in the order of the first: one sort instead of a hash table and a sort)."""
    if not f.use_rollups:
        return await session.execute(text(sql), f.params())
    before = (
        await session.execute(
            text(
                "SELECT current_setting('plan_cache_mode') AS mode, current_setting('enable_hashagg') AS hashagg, "
                "set_config('jit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true), "
                "set_config('enable_hashagg', CASE WHEN :sorted THEN 'off' ELSE current_setting('enable_hashagg') "
                "END, true)"
            ),
            {"sorted": sorted_groups},
        )
    ).one()
    result = await session.execute(text(sql), f.params())
    await session.execute(
        text("SELECT set_config('plan_cache_mode', :mode, true), set_config('enable_hashagg', :hashagg, true)"),
        {"mode": before.mode, "hashagg": before.hashagg},
    )
    return result


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _funnel_rates(item: dict[str, Any]) -> dict[str, Any]:
    item["lead_to_tour_rate"] = rate(item["toured"], item["leads"])
    item["tour_to_application_rate"] = rate(item["applied"], item["toured"])
    item["application_to_lease_rate"] = rate(item["leased"], item["applied"])
    item["lead_to_lease_rate"] = rate(item["leased"], item["leads"])
    return item


def _sums(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"COALESCE(sum(f.{name}), 0) AS {name}" for name in names)


COHORT_FIELDS = ("leads", *RANKS, "lost")


async def funnel_cohort(session: AsyncSession, f: Filter, group_by: str) -> list[dict[str, Any]]:
    sql = with_bounds(
        f"SELECT {group_key(group_by)} AS key, {_sums((*COHORT_FIELDS, 'no_owner'))} "
        f"FROM ({cohort_facts(f, 'cohort', group_by)}) f GROUP BY 1 HAVING sum(f.leads) <> 0 ORDER BY 2 DESC, 1"
    )
    rows = [dict(row._mapping) for row in await _facts_query(session, sql, f)]
    return [_funnel_rates({k: (int(v) if k != "key" else v) for k, v in row.items()}) for row in rows]


async def funnel_activity(session: AsyncSession, f: Filter, group_by: str) -> list[dict[str, Any]]:
    names = ("leads", *ACTIVITY_STAGES)
    columns = "day, property_id, source, owner_id, kind, " + ", ".join(MEASURES)
    # the cohort part adds only `leads` (created in the window); stage entries come from the activity part
    created = "day, property_id, source, owner_id, kind, leads, " + ", ".join(f"0 AS {m}" for m in MEASURES[1:])
    sql = with_bounds(
        f"SELECT {group_key(group_by)} AS key, {_sums(names)} FROM ("
        f"SELECT {created} FROM ({cohort_facts(f, 'cohort', group_by)}) cf "
        f"UNION ALL SELECT {columns} FROM ({activity_facts(f, group_by)}) af"
        ") f GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    rows = [dict(row._mapping) for row in await _facts_query(session, sql, f)]
    out = []
    for row in rows:
        item = {k: (int(v) if k != "key" else v) for k, v in row.items()}
        if any(item[name] for name in names):
            out.append(_funnel_rates(item))
    return out


async def attribution(session: AsyncSession, f: Filter) -> list[dict[str, Any]]:
    """Leads, tours, applications and leases by first-touch and last-touch source; spend and cost per step."""
    counts: dict[str, dict[str, Any]] = {}
    for touch in ("cohort", "last"):
        sql = with_bounds(
            f"SELECT {group_key('source')} AS key, COALESCE(sum(f.leads), 0) AS leads, "
            "COALESCE(sum(f.toured), 0) AS tours, COALESCE(sum(f.applied), 0) AS applications, "
            f"COALESCE(sum(f.leased), 0) AS leases FROM ({cohort_facts(f, touch, 'source')}) f GROUP BY 1"
        )
        for row in await _facts_query(session, sql, f):
            item = counts.setdefault(row.key, _empty_attribution(row.key))
            prefix = "" if touch == "cohort" else "last_touch_"
            for name in ("leads", "tours", "applications", "leases"):
                item[prefix + name] = int(getattr(row, name))
    spend = await spend_in_window(session, f)
    for source, cents in spend.items():
        counts.setdefault(source, _empty_attribution(source))["spend"] = round(cents / 100, 2)
    rows = []
    for item in counts.values():
        if not any(item[name] for name in ("leads", "last_touch_leads")) and item["spend"] is None:
            continue
        spent = spend.get(item["key"])
        for name, base in (("cost_per_lead", "leads"), ("cost_per_tour", "tours"), ("cost_per_lease", "leases")):
            item[name] = round(spent / 100 / item[base], 2) if spent is not None and item[base] else None
        rows.append(item)
    return sorted(rows, key=lambda row: (-row["leads"], row["key"]))


def _empty_attribution(key: str) -> dict[str, Any]:
    item: dict[str, Any] = {"key": key}
    for prefix in ("", "last_touch_"):
        for name in ("leads", "tours", "applications", "leases"):
            item[prefix + name] = 0
    item.update(spend=None, cost_per_lead=None, cost_per_tour=None, cost_per_lease=None)
    return item


async def spend_in_window(session: AsyncSession, f: Filter) -> dict[str, int]:
    """Spend of every month whose first day (in the organization's timezone) falls inside the window."""
    sql = (
        "SELECT s.source, sum(s.amount_cents) AS cents FROM source_spend s JOIN organizations o ON o.id = s.org_id "
        "WHERE s.org_id = :org AND s.month::timestamp AT TIME ZONE o.timezone >= :start "
        "AND s.month::timestamp AT TIME ZONE o.timezone < :end"
        + (" AND s.source = :source" if f.source is not None else "")
        + " GROUP BY 1"
    )
    return {row.source: int(row.cents) for row in await session.execute(text(sql), f.params())}


TZ = "COALESCE(p.timezone, o.timezone, 'UTC')"
LEAD_TZ_JOIN = "JOIN organizations o ON o.id = l.org_id LEFT JOIN properties p ON p.id = l.property_id"

# -- response time -------------------------------------------------------------------------------------------

KINDS = ("automated", "human", "first")
# speed-to-lead distribution: (name, above, at most) seconds; -1 so that 0 s falls in the first bucket
BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("within_1_minute", -1, 60),
    ("within_5_minutes", 60, 300),
    ("within_15_minutes", 300, 900),
    ("within_1_hour", 900, 3600),
    ("within_4_hours", 3600, 14400),
    ("within_24_hours", 14400, 86400),
    ("over_24_hours", 86400, 10**9),
)
COLUMNS = {
    "automated": "l.first_automated_response_at",
    "human": "l.first_human_response_at",
    "first": "l.first_response_at",
}


def _lead_group_key(group_by: str) -> str:
    return {
        "source": "COALESCE(l.source, 'unknown')",
        "property": "COALESCE(l.property_id::text, 'none')",
        "owner": "COALESCE(l.owner_id::text, 'unassigned')",
        "week": f"""to_char(date_trunc('week', (l.created_at AT TIME ZONE {TZ})::date), 'IYYY-"W"IW')""",
        "month": f"to_char((l.created_at AT TIME ZONE {TZ})::date, 'YYYY-MM')",
        "none": "'all'",
    }[group_by]


async def response_time(
    session: AsyncSession, f: Filter, group_by: str, working_hours: bool = False
) -> list[dict[str, Any]]:
    """First automated and first human reply: median, p90, share within 5 minutes and 1 hour (over all leads)."""
    from services.api.metrics import rolled  # reads this module's builders

    level = rolled.reply_level(f, group_by) if f.use_rollups and not working_hours else None
    if level is not None:
        return await rolled.response_time(session, f, group_by, level)
    where = "WHERE l.org_id = :org AND l.created_at >= :start AND l.created_at < :end" + f.lead_where()
    if working_hours:
        return await _response_time_working_hours(session, f, group_by, where)
    # each delay computed once per lead; both percentiles from one sort per kind
    inner = [f"{_lead_group_key(group_by)} AS key"]
    parts = []
    for kind in KINDS:
        # a reply recorded before the lead (clock skew, imports) counts as 0 s, as in the histograms
        inner.append(
            f"CASE WHEN {COLUMNS[kind]} IS NOT NULL "
            f"THEN GREATEST(extract(epoch FROM {COLUMNS[kind]} - l.created_at), 0) END AS {kind}_s"
        )
        sec = f"r.{kind}_s"
        parts.append(
            f"count({sec}) AS {kind}_responded, "
            f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {sec}) AS {kind}_pct, "
            f"count(*) FILTER (WHERE {sec} <= 300) AS {kind}_within_5_minutes, "
            f"count(*) FILTER (WHERE {sec} <= 3600) AS {kind}_within_1_hour, "
            + ", ".join(
                f"count(*) FILTER (WHERE {sec} > {low} AND {sec} <= {high}) AS {kind}_b_{name}"
                for name, low, high in BUCKETS
            )
        )
    sql = (
        f"SELECT r.key, count(*) AS leads, {', '.join(parts)} "
        f"FROM (SELECT {', '.join(inner)} FROM leads l {LEAD_TZ_JOIN} {where}) r GROUP BY 1 ORDER BY 1"
    )
    rows = []
    for row in await session.execute(text(sql), f.params()):
        data = dict(row._mapping)
        item: dict[str, Any] = {"key": data["key"], "leads": int(data["leads"])}
        for kind in KINDS:
            med, p90 = data[f"{kind}_pct"] or (None, None)
            item[kind] = _response_block(
                int(data["leads"]),
                int(data[f"{kind}_responded"]),
                med,
                p90,
                int(data[f"{kind}_within_5_minutes"]),
                int(data[f"{kind}_within_1_hour"]),
            )
            item[kind]["distribution"] = {name: int(data[f"{kind}_b_{name}"]) for name, _, _ in BUCKETS}
        rows.append(item)
    return rows


def _response_block(
    leads: int, responded: int, med: float | None, p90: float | None, in5: int, in60: int
) -> dict[str, Any]:
    return {
        "responded": responded,
        "median_seconds": round(float(med), 1) if med is not None else None,
        "p90_seconds": round(float(p90), 1) if p90 is not None else None,
        "within_5_minutes": in5,
        "within_5_minutes_rate": rate(in5, leads),
        "within_1_hour": in60,
        "within_1_hour_rate": rate(in60, leads),
    }


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def _response_time_working_hours(
    session: AsyncSession, f: Filter, group_by: str, where: str
) -> list[dict[str, Any]]:
    sql = (
        f"SELECT {_lead_group_key(group_by)} AS key, l.created_at, l.property_id, {TZ} AS tz, "
        f"{COLUMNS['automated']} AS automated, {COLUMNS['human']} AS human, {COLUMNS['first']} AS first "
        f"FROM leads l {LEAD_TZ_JOIN} {where}"
    )
    result = list(await session.execute(text(sql), f.params()))
    hours = await property_hours(session, f.org_id)
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in result:
        groups[row.key].append(row)
    rows = []
    for key in sorted(groups):
        members = groups[key]
        item: dict[str, Any] = {"key": key, "leads": len(members)}
        for kind in KINDS:
            seconds = [
                open_seconds(hours.get(row.property_id), row.created_at, getattr(row, kind), ZoneInfo(row.tz))
                for row in members
                if getattr(row, kind) is not None
            ]
            item[kind] = _response_block(
                len(members),
                len(seconds),
                median(seconds) if seconds else None,
                percentile_cont(seconds, 0.9),
                sum(1 for s in seconds if s <= 300),
                sum(1 for s in seconds if s <= 3600),
            )
            item[kind]["distribution"] = {
                name: sum(1 for s in seconds if low < s <= high) for name, low, high in BUCKETS
            }
        rows.append(item)
    return rows


async def property_hours(session: AsyncSession, org_id: uuid.UUID) -> dict[uuid.UUID, list[WorkingHours]]:
    """A property's working hours: the union of its team members' hours (members without hours add none)."""
    out: dict[uuid.UUID, list[WorkingHours]] = defaultdict(list)
    rows = await session.execute(
        text(
            "SELECT property_id, working_hours FROM property_team_members "
            "WHERE org_id = :org AND working_hours IS NOT NULL"
        ),
        {"org": org_id},
    )
    for property_id, document in rows:
        out[property_id].append(WorkingHours.model_validate(document))
    return out


def open_seconds(hours: list[WorkingHours] | None, start: datetime, end: datetime, tz: ZoneInfo) -> float:
    """Seconds of [start, end) inside the union of the given weekly hours; all of them when none are set."""
    if end <= start:
        return 0.0
    if not hours:
        return (end - start).total_seconds()
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    total = 0.0
    while day <= last:
        windows = sorted(w for h in hours for w in h.windows_on(day, tz))
        merged: list[list[datetime]] = []
        for w_start, w_end in windows:
            if merged and w_start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], w_end)
            else:
                merged.append([w_start, w_end])
        for w_start, w_end in merged:
            total += max(0.0, (min(end, w_end) - max(start, w_start)).total_seconds())
        day += timedelta(days=1)
    return total


# -- health --------------------------------------------------------------------------------------------------


async def health(session: AsyncSession, f: Filter, as_of: datetime) -> dict[str, Any]:
    """What is slipping: ownerless and stalled open leads now, SLA breaches, offers, reviews, intake."""
    p = {**f.params(), "as_of": as_of, "hour_ago": as_of - timedelta(hours=1), "anon": ANONYMOUS_REASON}
    prop = " AND l.property_id = :property" if f.property_id is not None else ""
    out: dict[str, Any]
    if f.use_rollups:
        from services.api.metrics import rolled  # reads this module's builders

        out = dict(await rolled.open_counts(session, f, as_of))
    else:
        out = await _open_counts_raw(session, f, p, prop)
    out.update(await _slipping(session, f, p, as_of))
    return out


async def _open_counts_raw(session: AsyncSession, f: Filter, p: dict[str, Any], prop: str) -> dict[str, Any]:
    open_row = (
        await session.execute(
            text(
                "SELECT count(*) AS open_leads, count(*) FILTER (WHERE l.owner_id IS NULL) AS no_owner, "
                "count(*) FILTER (WHERE l.next_action_type IS NULL) AS no_next_action, "
                "count(*) FILTER (WHERE l.next_action_due_at < :as_of) AS overdue_next_action "
                "FROM leads l WHERE l.org_id = :org AND l.status NOT IN ('lost', 'leased')"
                + prop
                + (" AND l.source = :source" if f.source is not None else "")
                + (" AND l.kind = :kind" if f.kind is not None else "")
                + f.scope.where()
            ),
            p,
        )
    ).one()
    return {k: int(v) for k, v in open_row._mapping.items()}


async def _slipping(session: AsyncSession, f: Filter, p: dict[str, Any], as_of: datetime) -> dict[str, Any]:
    """Health's windowed part: SLA breaches, offers, reviews, intake."""
    out: dict[str, Any] = {}
    event_scope = (
        "JOIN leads l ON l.id = e.lead_id WHERE e.org_id = :org AND e.occurred_at >= :start AND e.occurred_at < :end"
        + (" AND e.property_id = :property" if f.property_id is not None else "")
        + (" AND l.source = :source" if f.source is not None else "")
        + (" AND l.kind = :kind" if f.kind is not None else "")
        + f.scope.where()
    )
    out["sla_breaches"] = int(
        await session.scalar(text(f"SELECT count(*) FROM lead_events e {event_scope} AND e.type = 'sla_breached'"), p)
        or 0
    )
    seconds = (
        "COALESCE((e.data->>'seconds')::float, "
        "extract(epoch FROM (e.data->>'accepted_at')::timestamptz - (e.data->>'offered_at')::timestamptz))"
    )
    offers = (
        await session.execute(
            text(
                f"SELECT count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY {seconds}) AS med, "
                f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {seconds}) AS p90 "
                f"FROM lead_events e {event_scope} AND e.type = 'offer_accepted'"
            ),
            p,
        )
    ).one()
    out["offers_accepted"] = int(offers.n)
    out["offer_acceptance_median_seconds"] = round(float(offers.med), 1) if offers.med is not None else None
    out["offer_acceptance_p90_seconds"] = round(float(offers.p90), 1) if offers.p90 is not None else None
    review = (
        await session.execute(
            text(
                "SELECT count(*) AS n, min(created_at) AS oldest FROM review_items "
                "WHERE org_id = :org AND status = 'open'"
            ),
            p,
        )
    ).one()
    out["review_open"] = int(review.n)
    out["review_oldest_age_seconds"] = (
        max(0, int((as_of - review.oldest).total_seconds())) if review.oldest is not None else None
    )
    out["duplicates_prevented"] = int(
        await session.scalar(
            text(
                "SELECT count(*) FROM signal_applications WHERE org_id = :org AND applied_at >= :start "
                "AND applied_at < :end AND contact_created IS FALSE"
            ),
            p,
        )
        or 0
    )
    statuses = await session.execute(
        text(
            "SELECT status, count(*) FROM inbound_messages WHERE org_id = :org AND received_at >= :start "
            "AND received_at < :end GROUP BY 1 ORDER BY 1"
        ),
        p,
    )
    out["inbound_by_status"] = {status: int(n) for status, n in statuses}
    lag = (
        await session.execute(
            text(
                "SELECT count(*) AS n, "
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)) AS p50, "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)) AS p99 "
                "FROM inbound_messages WHERE org_id = :org AND received_at >= :hour_ago AND received_at < :as_of "
                "AND processed_at IS NOT NULL"
            ),
            p,
        )
    ).one()
    out["intake_processed_last_hour"] = int(lag.n)
    out["intake_lag_p50_seconds"] = round(float(lag.p50), 3) if lag.p50 is not None else None
    out["intake_lag_p99_seconds"] = round(float(lag.p99), 3) if lag.p99 is not None else None
    anonymous = await session.execute(
        text(
            f"SELECT COALESCE({ANON_PROPERTY_SQL}::text, 'none') AS key, count(*) AS n FROM inbound_messages im "
            "WHERE im.org_id = :org AND im.received_at >= :start AND im.received_at < :end "
            "AND im.status = 'ignored' AND im.reason = :anon"
            + (f" AND {ANON_PROPERTY_SQL} = :property" if f.property_id is not None else "")
            + " GROUP BY 1 ORDER BY 1"
        ),
        p,
    )
    by_property = {key: int(n) for key, n in anonymous}
    out["anonymous_missed_calls"] = sum(by_property.values())
    out["anonymous_missed_calls_by_property"] = by_property
    return out


def floor_minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)
