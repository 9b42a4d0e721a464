# ruff: noqa: S608  (SQL is assembled from constant fragments; every value a caller sends is a bind parameter)
"""Response time and health for organization-wide callers, from the rollups (migration m18r).

Response time: the reply histograms of every whole local day in the window (metric_reply_rollups + the base
deltas not yet folded), plus the leads of the partial days at the window's edges bucketed the same way (as
the funnel reads its edges); median and p90 from the bucket means, counts and shares exact. Health: the
open-lead counters of the cohort base rows summed over every month, and "overdue" as the open leads with a due
date minus those due at or after now (a range scan of ix_leads_metrics_open). docs/metrics.md has the bounds.
"""

from __future__ import annotations

import math
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


def _delay(column: str) -> str:
    return f"extract(epoch FROM l.{column} - l.created_at)::double precision"


def _ms(column: str) -> str:
    return f"COALESCE(round(1000 * GREATEST({_delay(column)}, 0))::bigint, 0)"


RAW_EXPAND = replies.EXPAND.format(
    a=f"metric_reply_bucket({_delay('first_automated_response_at')})",
    h=f"metric_reply_bucket({_delay('first_human_response_at')})",
    f=f"metric_reply_bucket({_delay('first_response_at')})",
    n="1",
    a_ms=_ms("first_automated_response_at"),
    h_ms=_ms("first_human_response_at"),
    f_ms=_ms("first_response_at"),
)
MEASURES = ", ".join(replies.MEASURES)


def _raw(f: Filter, lo: str, hi: str) -> str:
    return (
        f"SELECT (l.created_at AT TIME ZONE b.tz)::date AS day, {queries.PROPERTY}, COALESCE(l.source, '') AS source, "
        f"COALESCE(l.owner_id, '{ZERO}'::uuid) AS owner_id, l.kind AS kind, x.bucket, {replies.X_MEASURES} "
        f"FROM leads l {queries.LEAD_BOUNDS} {RAW_EXPAND} "
        f"WHERE l.org_id = :org AND l.created_at >= {lo} AND l.created_at < {hi}" + f.lead_where()
    )


def reply_facts(f: Filter, level: str, group_by: str) -> str:
    """(day, property, source, owner, kind, bucket, counts, milliseconds) of the window's leads: rollup pieces
    (one index range scan each) + deltas not yet folded + the partial days at the edges from raw rows."""
    keeps_property, keeps_source, keeps_owner = replies.LEVELS[level]
    pieces = "pieces_w" if group_by == "week" else "pieces_m"
    day = (
        "CASE pc.grain WHEN 'd' THEN b.day WHEN 'w' THEN date_trunc('week', b.day::timestamp)::date "
        "ELSE date_trunc('month', b.day::timestamp)::date END"
    )
    delta_where = _delta_where(f, "b")
    prop = "b.property_id" if keeps_property else f"'{ZERO}'::uuid"
    source = "b.source" if keeps_source else "''"
    owner = "b.owner_id" if keeps_owner else f"'{ZERO}'::uuid"
    rolled = (
        f"SELECT x.day, x.property_id, x.source, x.owner_id, x.kind, x.bucket, {replies.X_MEASURES} "
        f"FROM {pieces} pc CROSS JOIN LATERAL ("
        f"SELECT r.day, r.property_id, r.source, r.owner_id, r.kind, r.bucket, {MEASURES} "
        f"FROM metric_reply_rollups r WHERE r.org_id = :org AND r.view = '{level}.' || pc.grain AND r.tz = pc.tz "
        f"AND r.day >= pc.lo AND r.day < pc.hi{f.rollup_where()} "
        f"UNION ALL SELECT {day}, {prop}, {source}, {owner}, b.kind, x.bucket, {replies.X_MEASURES} "
        f"FROM metric_count_deltas b {replies.BASE_EXPAND} "
        f"WHERE b.org_id = :org AND b.view = 'cohort' AND b.tz = pc.tz AND b.day >= pc.lo AND b.day < pc.hi"
        f"{delta_where}) x"
    )
    return rolled + " UNION ALL " + queries._edges(f, lambda lo, hi: _raw(f, lo, hi), "l.created_at")


async def response_time(session: AsyncSession, f: Filter, group_by: str, level: str) -> list[dict[str, Any]]:
    sql = queries.with_bounds(
        f"SELECT {queries.group_key(group_by)} AS key, f.bucket, "
        + ", ".join(f"sum(f.{m}) AS {m}" for m in replies.MEASURES)
        + f" FROM ({reply_facts(f, level, group_by)}) f GROUP BY 1, 2 ORDER BY 1, 2"
    )
    groups: dict[str, list[Any]] = {}
    for row in await queries._facts_query(session, sql, f):
        groups.setdefault(row.key, []).append(row)
    out = []
    for key, rows in groups.items():
        leads = sum(int(row.automated) for row in rows)
        if leads == 0:
            continue
        item: dict[str, Any] = {"key": key, "leads": leads}
        for kind in replies.KINDS:
            # (bucket, count, mean seconds) of the buckets holding replies, in order
            hist = [
                (row.bucket, int(getattr(row, kind)), int(getattr(row, f"{kind}_ms")) / 1000)
                for row in rows
                if row.bucket >= 0 and int(getattr(row, kind)) > 0
            ]
            hist = [(b, n, total / n) for b, n, total in hist]

            def within(low: float, high: float, hist: list[tuple[int, int, float]] = hist) -> int:
                first, last = replies.last_bucket(low), replies.last_bucket(high)
                return sum(n for b, n, _ in hist if first < b <= last)

            item[kind] = queries._response_block(
                leads,
                sum(n for _, n, _ in hist),
                percentile(hist, 0.5),
                percentile(hist, 0.9),
                within(-1, 300),
                within(-1, 3600),
            )
            item[kind]["distribution"] = {name: within(low, high) for name, low, high in queries.BUCKETS}
        out.append(item)
    return out


def percentile(hist: list[tuple[int, int, float]], fraction: float) -> float | None:
    """percentile_cont over a histogram: the two closest ranks' bucket means, interpolated linearly."""
    total = sum(n for _, n, _ in hist)
    if total == 0:
        return None
    position = fraction * (total - 1)
    low_rank = math.floor(position)

    def value(rank: int) -> float:
        seen = 0
        for _, n, mean in hist:
            seen += n
            if rank < seen:
                return mean
        return hist[-1][2]

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
