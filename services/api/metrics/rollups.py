# ruff: noqa: S608  (SQL is assembled from constant fragments; values are bind parameters)
"""Rollup upkeep: fold trigger deltas into metric_counts and metric_rollups (cron), rebuild from raw rows,
compare with raw.

Triggers (migrations x13, i15a, m17c) append signed *base* rows to metric_count_deltas in the writer's own
transaction: `cohort` (one per lead: local day, timezone, property, source, latest source, owner, kind) and
`activity` (one per status event). The fold sums them into metric_counts (fine day rows of the two base views)
and derives the coarse levels of metric_rollups from the same rows; readers sum rollups + deltas, so answers
are exact whether or not compaction has run.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.metrics import replies
from shared import clock
from shared.logging import get_logger
from shared.queue import job_transaction

log = get_logger("metrics.rollups")

ZERO = "'00000000-0000-0000-0000-000000000000'::uuid"
KEY = "org_id, view, day, property_id, source, owner_id, kind"
# funnel measures, then health's open-lead counters (migration m18r): open, and of those without owner, without
# next action, with a next action due date
MEASURES = ("leads", "contacted", "qualified", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost",
            "nurture", "reopened", "no_owner", "open_leads", "open_no_owner", "open_no_action", "open_due")  # fmt: skip
COLUMNS = f"{KEY}, {', '.join(MEASURES)}"
# a cohort base row also carries its lead's three first replies: bucket (NULL: none) and signed milliseconds
REPLY = "reply_a, reply_h, reply_f, reply_a_ms, reply_h_ms, reply_f_ms"
BASE_COLUMNS = (
    f"org_id, view, day, tz, property_id, source, latest_source, owner_id, kind, {REPLY}, {', '.join(MEASURES)}"
)
RKEY = "org_id, view, day, tz, property_id, source, owner_id, kind"
RCOLUMNS = f"{RKEY}, {', '.join(MEASURES)}"
SUMS = ", ".join(f"sum({m}) AS {m}" for m in MEASURES)
NONZERO = " OR ".join(f"r.{m} <> 0" for m in MEASURES)
SUM_NONZERO = " OR ".join(f"sum({m}) <> 0" for m in MEASURES)
COMPACT_BATCH = 50_000
GRAINS = ("d", "w", "m")  # local day, ISO week (its Monday), month (its first day)

# Coarse levels (metric_rollups.view = "<level>.<grain>"): base view, keeps property, source column
# (s = source, l = latest source, '' = none), keeps owner. Migration m17c holds the same list.
LEVELS: dict[str, tuple[str, bool, str, bool]] = {
    "s": ("cohort", False, "s", False), "p": ("cohort", True, "", False), "o": ("cohort", False, "", True),
    "ps": ("cohort", True, "s", False), "po": ("cohort", True, "", True), "so": ("cohort", False, "s", True),
    "ls": ("cohort", False, "l", False), "lps": ("cohort", True, "l", False),
    "as": ("activity", False, "s", False), "ap": ("activity", True, "", False), "ao": ("activity", False, "", True),
    "aps": ("activity", True, "s", False), "apo": ("activity", True, "", True), "aso": ("activity", False, "s", True),
}  # fmt: skip


def level_rows(rows: str) -> str:
    """Every coarse rollup row of the base rows `rows` (a relation with BASE_COLUMNS), not yet summed."""
    values = ", ".join(
        f"('{name}.{grain}', '{base}', '{grain}', {str(p).lower()}, '{s}', {str(o).lower()})"
        for name, (base, p, s, o) in LEVELS.items()
        for grain in GRAINS
    )
    return (
        "SELECT b.org_id, v.name AS view, CASE v.grain WHEN 'd' THEN b.day "
        "WHEN 'w' THEN date_trunc('week', b.day::timestamp)::date "
        "ELSE date_trunc('month', b.day::timestamp)::date END AS day, b.tz, "
        f"CASE WHEN v.p THEN b.property_id ELSE {ZERO} END AS property_id, "
        "CASE v.s WHEN 's' THEN b.source WHEN 'l' THEN b.latest_source ELSE '' END AS source, "
        f"CASE WHEN v.o THEN b.owner_id ELSE {ZERO} END AS owner_id, b.kind, "
        + ", ".join(f"b.{m}" for m in MEASURES)
        + f" FROM ({rows}) b JOIN (VALUES {values}) v(name, base, grain, p, s, o) ON v.base = b.view"
    )


def _upsert(table: str, columns: str, key: str) -> str:
    return (
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {{src}} "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(f'{m} = {table}.{m} + EXCLUDED.{m}' for m in MEASURES)}"
    )


# Claim a batch of deltas (SKIP LOCKED: two workers never fold the same rows), sum them per key in key order
# (two compactors lock rows in the same order: no deadlock), add them to metric_counts (fine day rows) and to
# every coarse level of metric_rollups, and their replies to metric_reply_rollups.
COMPACT_SQL = f"""
WITH moved AS (
  DELETE FROM metric_count_deltas WHERE id IN (
    SELECT id FROM metric_count_deltas ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
  RETURNING {BASE_COLUMNS}
), fine AS (
  SELECT {KEY}, {SUMS} FROM moved GROUP BY {KEY} ORDER BY {KEY}
), coarse AS (
  SELECT {RKEY}, {SUMS} FROM ({level_rows("SELECT * FROM moved")}) r GROUP BY {RKEY} ORDER BY {RKEY}
), a AS (
  {_upsert("metric_counts", COLUMNS, KEY).format(src="fine")} RETURNING 1
), reply AS (
  SELECT {replies.RKEY}, {replies.SUMS} FROM ({replies.reply_rows("SELECT * FROM moved")}) r
  GROUP BY {replies.RKEY} HAVING {replies.SUM_NONZERO} ORDER BY {replies.RKEY}
), b AS (
  {_upsert("metric_rollups", RCOLUMNS, RKEY).format(src="coarse")} RETURNING 1
), c AS (
  {replies.upsert("reply")} RETURNING 1
), marked AS (
  INSERT INTO metric_reply_trailing (org_id, tz) SELECT DISTINCT org_id, tz FROM moved WHERE view = 'cohort'
  ON CONFLICT (org_id, tz) DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b) + (SELECT count(*) FROM c)
"""


async def compact(session: AsyncSession, batch: int = COMPACT_BATCH) -> int:
    """Fold up to `batch` deltas; returns how many key rows changed (rows that reach 0 stay until a rebuild;
    readers sum, so a zero row changes nothing). A timezone met for the first time gets a trailing-window marker
    without a day (no window yet: roll_trailing builds them from the day and month rows)."""
    await session.execute(text(f"SELECT pg_advisory_xact_lock_shared({replies.TRAILING_LOCK})"))
    return int(await session.scalar(text(COMPACT_SQL), {"batch": batch}) or 0)


# the trailing windows not ending today (local) or not built: moved to end today
TODAY = "(CAST(:now AS timestamptz) AT TIME ZONE tz)::date"
ROLL_DUE_SQL = (
    f"SELECT org_id, tz, day, {TODAY} AS today FROM metric_reply_trailing "
    f"WHERE day IS DISTINCT FROM {TODAY} ORDER BY org_id, tz LIMIT :limit"
)
TRAILING_ROWS = f"metric_reply_rollups WHERE org_id = :org AND view IN ({replies.TRAILING_VIEWS}) AND tz = :tz"
# a move of up to this many days forward shifts the windows (the days gained and lost); longer, backward or a
# first build: rebuilt from the level's day and month rows
SHIFT_DAYS = 31
MOVE_MARKER = "UPDATE metric_reply_trailing SET day = :new WHERE org_id = :org AND tz = :tz"
SHIFT_SQL = (
    replies.trailing_shift(),
    f"DELETE FROM {TRAILING_ROWS} AND " + " AND ".join(f"{m} = 0" for m in replies.MEASURES),
    MOVE_MARKER,
)
REBUILD_TRAILING_SQL = (
    f"DELETE FROM {TRAILING_ROWS}",
    MOVE_MARKER,
    replies.trailing_insert("SELECT * FROM metric_reply_trailing WHERE org_id = :org AND tz = :tz"),
)


async def roll_trailing(session: AsyncSession, now: datetime | None = None, limit: int = 1_000_000) -> int:
    """Move up to `limit` organizations' and timezones' trailing windows to end today (local): by the days gained
    and lost (a day's move: ~9 k day rows, ~0.2 s at 1 M leads), or rebuilt from day and month rows (~4 s).
    Alone on the trailing lock, so no fold adds a delta to a window being moved. Returns how many markers moved."""
    at = now or clock.now()
    if not (await session.execute(text(ROLL_DUE_SQL), {"now": at, "limit": limit})).first():
        return 0
    await session.execute(text(f"SELECT pg_advisory_xact_lock({replies.TRAILING_LOCK})"))
    due = (await session.execute(text(ROLL_DUE_SQL), {"now": at, "limit": limit})).all()  # again, under the lock
    for row in due:
        shift = row.day is not None and 0 < (row.today - row.day).days <= SHIFT_DAYS
        params = {"org": row.org_id, "tz": row.tz, "old": row.day, "new": row.today}
        for statement in SHIFT_SQL if shift else REBUILD_TRAILING_SQL:
            await session.execute(text(statement), params)
    return len(due)


async def metrics_compact(ctx: dict[str, Any]) -> int:
    """Cron job: fold trigger deltas into the rollups until none are left (bounded per run)."""
    total = 0
    for _ in range(20):
        async with job_transaction(ctx) as session:
            changed = await compact(session)
        total += changed
        if changed == 0:
            break
    moved = 0
    for _ in range(100):  # one organization and timezone per transaction: the trailing lock held briefly
        async with job_transaction(ctx) as session:
            step = await roll_trailing(session, limit=1)
        moved += step
        if step == 0:
            break
    if total or moved:
        log.info("metrics.compacted", keys=total, trailing_moved=moved)
    return total


# Each one-dimension level is summed from a two-dimension one, and weeks and months from a level's days: the
# rebuild reads the base rows once per two-dimension level instead of once per level and grain.
PARENTS = {"s": "ps", "p": "ps", "o": "po", "ls": "lps", "as": "aps", "ap": "aps", "ao": "apo"}


def rebuild_statements(org_filter: str = "org_id = :org", base: str = "metric_base") -> list[str]:
    """INSERTs that fill metric_rollups from the base rows in `base` (the rebuild, migration m17c, the bench's
    generator), in dependency order."""
    out = []
    for level in sorted(LEVELS, key=lambda name: name in PARENTS):  # parents first
        view, keeps_property, source, keeps_owner = LEVELS[level]
        prop = "property_id" if keeps_property else ZERO
        owner = "owner_id" if keeps_owner else ZERO
        if level in PARENTS:  # the parent's `source` already holds this level's source (or latest source)
            src = "source" if source else "''"
            frm = f"metric_rollups WHERE {org_filter} AND view = '{PARENTS[level]}.d'"
        else:
            src = {"s": "source", "l": "latest_source", "": "''"}[source]
            frm = f"{base} WHERE {org_filter} AND view = '{view}'"
        columns = f"org_id, '{level}.d', day, tz, {prop}, {src}, {owner}, kind"
        out.append(
            f"INSERT INTO metric_rollups ({RCOLUMNS}) SELECT {columns}, {SUMS} FROM {frm} "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING {SUM_NONZERO}"
        )
        for grain, unit in (("w", "week"), ("m", "month")):
            out.append(
                f"INSERT INTO metric_rollups ({RCOLUMNS}) SELECT org_id, '{level}.{grain}', "
                f"date_trunc('{unit}', day::timestamp)::date, tz, property_id, source, owner_id, kind, {SUMS} "
                f"FROM metric_rollups WHERE {org_filter} AND view = '{level}.d' "
                f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING {SUM_NONZERO}"
            )
    return out


# the rebuild from raw rows: base rows once (a temporary table), then both tables from them
REBUILD_SQL = (
    "SET LOCAL work_mem = '64MB'",
    "CREATE TEMP TABLE metric_base ON COMMIT DROP AS SELECT * FROM metric_recompute_base(:org)",
    f"INSERT INTO metric_counts ({COLUMNS}) SELECT {KEY}, {SUMS} FROM metric_base GROUP BY {KEY} HAVING {SUM_NONZERO}",
    *rebuild_statements(),
    *replies.rebuild_statements(),
    "DROP TABLE metric_base",
)


async def rebuild_org(session: AsyncSession, org_id: uuid.UUID) -> int:
    """Recompute one organization's rollups from leads and events. Blocks writers of leads/events meanwhile
    (SHARE lock) so no delta can slip between the recomputation and the swap."""
    await session.execute(text("LOCK TABLE leads, lead_events IN SHARE MODE"))
    await session.execute(text(f"SELECT pg_advisory_xact_lock({replies.TRAILING_LOCK})"))  # no fold meanwhile
    for table in ("metric_count_deltas", "metric_counts", "metric_rollups", "metric_reply_rollups"):
        await session.execute(text(f"DELETE FROM {table} WHERE org_id = :org"), {"org": org_id})
    rows = 0
    for statement in REBUILD_SQL:
        result = await session.execute(text(statement), {"org": org_id})
        if statement.startswith("INSERT"):
            rows += int(getattr(result, "rowcount", 0) or 0)
    return rows


async def disagreements(session: AsyncSession, org_id: uuid.UUID) -> list[dict[str, Any]]:
    """Keys where the rollups (counts + deltas, coarse levels + deltas) and a recomputation from raw rows
    differ (empty means exact)."""
    nonzero = " OR ".join(f"sum({m}) <> 0" for m in MEASURES)
    differ = " OR ".join(f"k.{m} IS DISTINCT FROM f.{m}" for m in MEASURES)
    deltas = f"SELECT {BASE_COLUMNS} FROM metric_count_deltas WHERE org_id = :org"
    base = "SELECT * FROM metric_recompute_base(:org)"
    fine_as_r = "org_id, view, day, ''::text AS tz, property_id, source, owner_id, kind"
    sql = f"""
    WITH kept AS (
      SELECT {fine_as_r}, {SUMS} FROM (
        SELECT {COLUMNS} FROM metric_counts WHERE org_id = :org
        UNION ALL SELECT {COLUMNS} FROM metric_count_deltas WHERE org_id = :org) k
      GROUP BY {KEY} HAVING {nonzero}
      UNION ALL
      SELECT {RKEY}, {SUMS} FROM (
        SELECT {RCOLUMNS} FROM metric_rollups WHERE org_id = :org
        UNION ALL SELECT {RCOLUMNS} FROM ({level_rows(deltas)}) d) k
      GROUP BY {RKEY} HAVING {nonzero}
    ), fresh AS (
      SELECT {fine_as_r}, {SUMS} FROM ({base}) b GROUP BY {KEY} HAVING {nonzero}
      UNION ALL
      SELECT {RKEY}, {SUMS} FROM ({level_rows(base)}) r GROUP BY {RKEY} HAVING {nonzero}
    )
    SELECT COALESCE(k.view, f.view) AS view, COALESCE(k.day, f.day) AS day, COALESCE(k.source, f.source) AS source,
           {", ".join(f"k.{m} AS kept_{m}, f.{m} AS fresh_{m}" for m in MEASURES)}
    FROM kept k FULL JOIN fresh f USING ({RKEY})
    WHERE {differ}
    """
    out = [dict(row._mapping) for row in await session.execute(text(sql), {"org": org_id})]
    reply = replies.disagreements_sql(deltas, base)
    return out + [dict(row._mapping) for row in await session.execute(text(reply), {"org": org_id})]
