# ruff: noqa: S608  (SQL is assembled from constant fragments; every value a caller sends is a bind parameter)
"""Response time and health for organization-wide callers, from the rollups (migration m18r).

Response time: the reply histograms of every whole local day in the window (metric_reply_rollups + the base
deltas not yet folded), plus the leads of the partial days at the window's edges bucketed the same way (as
the funnel reads its edges); median and p90 from the bucket means, counts and shares exact. Health: the
open-lead counters of the cohort base rows summed over every month, and "overdue" as the open leads with a due
date minus those due at or after now (a range scan of ix_leads_metrics_open). docs/metrics.md has the bounds.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.metrics import queries, replies
from services.api.metrics.queries import Filter

ZERO = queries.ZERO


def reply_level(f: Filter, group_by: str) -> str | None:
    """The reply level keeping what this request groups and filters by; None: read raw rows."""
    need = {x for x in ({"source": "s", "property": "p", "owner": "o"}.get(group_by),) if x}
    need |= {"p"} if f.property_id is not None else set()
    need |= {"s"} if f.source is not None else set()
    if not need:
        return "n"
    return need.pop() if len(need) == 1 else None


def _delta_where(f: Filter, alias: str) -> str:
    """The request's filters over base delta rows `alias`."""
    return "".join(
        f" AND {alias}.{column} = :{param}"
        for column, param, value in (
            ("property_id", "property", f.property_id),
            ("source", "source", f.source),
            ("kind", "kind", f.kind),
        )
        if value is not None
    )


REPLY_COLUMNS = {
    "automated": "first_automated_response_at",
    "human": "first_human_response_at",
    "first": "first_response_at",
}


def _delay(column: str) -> str:
    return f"extract(epoch FROM l.{column} - l.created_at)::double precision"


def _ms(column: str) -> str:
    return f"COALESCE(round(1000 * GREATEST({_delay(column)}, 0))::bigint, 0)"


MEASURES = ", ".join(replies.MEASURES)


def _raw(f: Filter, lo: str, hi: str) -> str:
    """The window's leads created in [lo, hi), each with its three replies' buckets and milliseconds."""
    buckets = ", ".join(
        f"metric_reply_bucket({_delay(column)}) AS b_{name}, {_ms(column)} AS ms_{name}"
        for name, column in REPLY_COLUMNS.items()
    )
    return (
        f"SELECT (l.created_at AT TIME ZONE b.tz)::date AS day, {queries.PROPERTY}, COALESCE(l.source, '') AS source, "
        f"COALESCE(l.owner_id, '{ZERO}'::uuid) AS owner_id, l.kind AS kind, {buckets} "
        f"FROM leads l {queries.LEAD_BOUNDS} "
        f"WHERE l.org_id = :org AND l.created_at >= {lo} AND l.created_at < {hi}" + f.lead_where()
    )


# a raw lead as its three (bucket, counts, milliseconds) rows: unnest in the select list (a LATERAL VALUES list
# re-initialises its expressions for every lead: 3x slower on the ~2 k leads of a default window's edges)
def _unnest(sign: int = 1) -> str:
    """A raw lead `r` as its three (bucket, counts, milliseconds) rows, counted `sign` times."""
    columns = [
        f"unnest(ARRAY[{', '.join(f'COALESCE(r.b_{kind}, {replies.NO_REPLY})' for kind in replies.KINDS)}]) AS bucket"
    ]
    for k, kind in enumerate(replies.KINDS):
        counts = ",".join(str(sign if i == k else 0) for i in range(3))
        columns.append(f"unnest('{{{counts}}}'::int[]) AS {kind}")
    for k, kind in enumerate(replies.KINDS):
        ms = ", ".join(f"{sign} * r.ms_{kind}" if i == k else "0" for i in range(3))
        columns.append(f"unnest(ARRAY[{ms}]) AS {kind}_ms")
    return ", ".join(columns)


def reply_facts(f: Filter, level: str, group_by: str) -> str:
    """(day, property, source, owner, kind, bucket, counts, milliseconds) of the window's leads: rollup pieces
    (one index range scan each) + deltas not yet folded + the partial days at the edges from raw rows."""
    keeps_property, keeps_source, keeps_owner = replies.LEVELS[level]
    # signed pieces: a partial month may be read as its month row minus the days outside the window; a level
    # without weeks (replies.LEVEL_GRAINS) reads days where the others read weeks
    weeks = "w" in replies.LEVEL_GRAINS[level]
    if group_by == "week":  # months straddle weeks: weeks and days, or days
        pieces = (
            "(SELECT *, 1 AS sign FROM pieces_w)"
            if weeks
            else "(SELECT tz, 'd' AS grain, dlo AS lo, dhi AS hi, 1 AS sign FROM tzb WHERE dlo < dhi)"
        )
    elif level in replies.TRAILING_LEVELS and group_by != "month":  # a trailing window's rows carry no month
        pieces = f"trailing_{level}"
    else:
        pieces = f"pieces_{level}"
    # a trailing window's piece (grain t30, t365) spans the base days [lo, hi); its rows carry no day of their own
    trailing = "pc.grain LIKE 't%'"
    day = (
        "CASE pc.grain WHEN 'd' THEN b.day WHEN 'w' THEN date_trunc('week', b.day::timestamp)::date "
        f"ELSE CASE WHEN {trailing} THEN pc.hi - 1 ELSE date_trunc('month', b.day::timestamp)::date END END"
    )
    delta_where = _delta_where(f, "b")
    prop = "b.property_id" if keeps_property else f"'{ZERO}'::uuid"
    source = "b.source" if keeps_source else "''"
    owner = "b.owner_id" if keeps_owner else f"'{ZERO}'::uuid"
    rolled = (
        "SELECT x.day, x.property_id, x.source, x.owner_id, x.kind, x.bucket, "
        + ", ".join(f"pc.sign * x.{m} AS {m}" for m in replies.MEASURES)
        + f" FROM {pieces} pc CROSS JOIN LATERAL ("
        f"SELECT r.day, r.property_id, r.source, r.owner_id, r.kind, r.bucket, {MEASURES} "
        f"FROM metric_reply_rollups r WHERE r.org_id = :org AND r.view = '{level}.' || pc.grain AND r.tz = pc.tz "
        f"AND r.day >= CASE WHEN {trailing} THEN {replies.TRAILING_ROW_DAY} ELSE pc.lo END "
        f"AND r.day < CASE WHEN {trailing} THEN {replies.TRAILING_ROW_DAY} + 1 ELSE pc.hi END{f.rollup_where()} "
        f"UNION ALL SELECT {day}, {prop}, {source}, {owner}, b.kind, x.bucket, {replies.X_MEASURES} "
        f"FROM metric_count_deltas b {replies.BASE_EXPAND} "
        f"WHERE b.org_id = :org AND b.view = 'cohort' AND b.tz = pc.tz AND b.day >= pc.lo AND b.day < pc.hi"
        f"{delta_where}) x"
    )
    edges = queries._edges(f, lambda lo, hi: _raw(f, lo, hi), "l.created_at")
    # the window's last local day read whole (queries._bounds(whole_last_day=True)): minus its leads from `end` on
    after = (
        _raw(f, ":end", "(SELECT max(dhi::timestamp AT TIME ZONE tz) + interval '3 hours' FROM tzb)")
        + " AND (l.created_at AT TIME ZONE b.tz)::date < b.dhi"
    )
    columns = "r.day, r.property_id, r.source, r.owner_id, r.kind"
    return (
        f"{rolled} UNION ALL SELECT {columns}, {_unnest()} FROM ({edges}) r "
        f"UNION ALL SELECT {columns}, {_unnest(-1)} FROM ({after}) r"
    )


async def response_time(session: AsyncSession, f: Filter, group_by: str, level: str) -> list[dict[str, Any]]:
    """One row per group: its histogram as parallel arrays in bucket order (bucket -1, the leads without such a
    reply, first). Merging the pieces per bucket stays in SQL; Python reads each array once, in C (accumulate,
    bisect): at the property level a 30-day answer holds ~17 k (group, bucket) cells."""
    merged = ", ".join(
        f"sum(f.{m}::int)::bigint AS {m}" if not m.endswith("_ms") else f"sum(f.{m}::float8)::bigint AS {m}"
        for m in replies.MEASURES
    )
    arrays = ", ".join(f"array_agg(f.{m}) AS {m}" for m in ("bucket", *replies.MEASURES))
    facts = reply_facts(f, level, group_by)
    # a property or owner merges its buckets by its uuid (cheaper than by its text key, once per fact row)
    column = {"property": "property_id", "owner": "owner_id"}.get(group_by)
    if column is not None:
        cells = f"SELECT f.{column}, f.bucket, {merged} FROM ({facts}) f GROUP BY 1, 2 ORDER BY 1, 2"
        outer = f"SELECT {queries.group_key(group_by)} AS key, {arrays} FROM ({cells}) f GROUP BY f.{column}"
    else:
        cells = f"SELECT {queries.group_key(group_by)} AS key, f.bucket, {merged} FROM ({facts}) f GROUP BY 1, 2 "
        cells += "ORDER BY 1, 2"
        outer = f"SELECT f.key, {arrays} FROM ({cells}) f GROUP BY 1"
    sql = queries.with_bounds(f"{outer} ORDER BY 1", whole_last_day=True)
    out = []
    for row in await queries._facts_query(session, sql, f, sorted_groups=True):
        item = histogram_answer(row.key, row._mapping)
        if item is not None:
            out.append(item)
    return out


# the thresholds an answer counts replies within (docs/metrics.md): each one an edge of the buckets, so exact
THRESHOLDS = sorted({high for _, _, high in queries.BUCKETS if high < 10**9} | {300, 3600})


def histogram_answer(key: str, row: Any) -> dict[str, Any] | None:
    """The response-time row of one group from its histogram arrays (`bucket`, and per kind counts and ms)."""
    buckets = row["bucket"]
    columns = {m: row[m] for m in replies.MEASURES}
    if buckets != sorted(buckets):  # array_agg over a sorted subquery: checked, not assumed
        order = sorted(range(len(buckets)), key=buckets.__getitem__)
        buckets = [buckets[i] for i in order]
        columns = {m: [values[i] for i in order] for m, values in columns.items()}
    leads = sum(columns["automated"])  # every lead counts once per kind, bucket -1 included
    if leads == 0:
        return None
    skip = 1 if buckets and buckets[0] == replies.NO_REPLY else 0
    replied = buckets[skip:]
    # how many of the replied buckets lie at or below each threshold's last bucket (the same for the three kinds)
    cut = {t: bisect.bisect_right(replied, replies.last_bucket(t)) for t in THRESHOLDS}
    item: dict[str, Any] = {"key": key, "leads": leads}
    for kind in replies.KINDS:
        counts, sums = columns[kind][skip:], columns[f"{kind}_ms"][skip:]
        running = list(itertools.accumulate(counts))
        responded = running[-1] if running else 0
        within = {t: running[at - 1] if at else 0 for t, at in cut.items()}
        within[-1], within[10**9] = 0, responded

        def value(rank: int, running: list[int] = running, counts: list[int] = counts, sums: list[int] = sums) -> float:
            at = min(bisect.bisect_right(running, rank), len(running) - 1)
            return sums[at] / counts[at] / 1000

        item[kind] = queries._response_block(
            leads, responded, percentile(value, responded, 0.5), percentile(value, responded, 0.9), within[300],
            within[3600],
        )  # fmt: skip
        item[kind]["distribution"] = {name: within[high] - within[low] for name, low, high in queries.BUCKETS}
    return item


def percentile(value: Callable[[int], float], total: int, fraction: float) -> float | None:
    """percentile_cont over a histogram of `total` replies: the two closest ranks' bucket means (`value`),
    interpolated linearly."""
    if total == 0:
        return None
    position = fraction * (total - 1)
    low_rank = math.floor(position)
    low, high = value(low_rank), value(min(low_rank + 1, total - 1))
    return low + (high - low) * (position - low_rank)


# -- health ---------------------------------------------------------------------------------------------------


async def open_counts(session: AsyncSession, f: Filter, as_of: datetime) -> dict[str, int]:
    """open_leads, no_owner, no_next_action, overdue_next_action, exact, without reading the open leads."""
    level = "ps" if f.property_id is not None and f.source is not None else "p" if f.property_id is not None else "s"
    delta_where = _delta_where(f, "d")
    columns = "open_leads, open_no_owner, open_no_action, open_due"
    counters = (
        await session.execute(
            text(
                "SELECT COALESCE(sum(open_leads), 0) AS open_leads, COALESCE(sum(open_no_owner), 0) AS no_owner, "
                "COALESCE(sum(open_no_action), 0) AS no_next_action, COALESCE(sum(open_due), 0) AS due FROM ("
                f"SELECT {columns} FROM metric_rollups WHERE org_id = :org AND view = '{level}.m'{f.rollup_where()} "
                f"UNION ALL SELECT {columns} FROM metric_count_deltas d WHERE d.org_id = :org AND d.view = 'cohort'"
                f"{delta_where}) c"
            ),
            f.params(),
        )
    ).one()
    upcoming = await session.scalar(
        text(
            "SELECT count(*) FROM leads l WHERE l.org_id = :org AND l.status NOT IN ('lost', 'leased') "
            "AND l.next_action_due_at >= :as_of" + f.lead_where()
        ),
        {**f.params(), "as_of": as_of},
    )
    return {
        "open_leads": int(counters.open_leads),
        "no_owner": int(counters.no_owner),
        "no_next_action": int(counters.no_next_action),
        "overdue_next_action": int(counters.due) - int(upcoming or 0),
    }
