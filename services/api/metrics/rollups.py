# ruff: noqa: S608  (SQL is assembled from constant fragments; values are bind parameters)
"""Rollup upkeep: fold trigger deltas into metric_counts (cron), rebuild from raw rows, compare with raw.

Triggers (migration x13) append signed rows to metric_count_deltas in the writer's own transaction; readers
sum metric_counts + metric_count_deltas, so answers are exact whether or not compaction has run.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.logging import get_logger
from shared.queue import job_transaction

log = get_logger("metrics.rollups")

KEY = "org_id, view, day, property_id, source, owner_id, kind"
MEASURES = ("leads", "contacted", "qualified", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost",
            "nurture", "reopened", "no_owner")  # fmt: skip
COLUMNS = f"{KEY}, {', '.join(MEASURES)}"
SUMS = ", ".join(f"sum({m}) AS {m}" for m in MEASURES)
NONZERO = " OR ".join(f"r.{m} <> 0" for m in MEASURES)
COMPACT_BATCH = 50_000

# Claim a batch of deltas (SKIP LOCKED: two workers never fold the same rows), sum them per key in key order
# (two compactors lock metric_counts rows in the same order: no deadlock) and add them to metric_counts.
COMPACT_SQL = f"""
WITH moved AS (
  DELETE FROM metric_count_deltas WHERE id IN (
    SELECT id FROM metric_count_deltas ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
  RETURNING {COLUMNS}
), summed AS (
  SELECT {KEY}, {SUMS} FROM moved GROUP BY {KEY} ORDER BY {KEY}
)
INSERT INTO metric_counts ({COLUMNS}) SELECT {COLUMNS} FROM summed
ON CONFLICT ({KEY}) DO UPDATE SET {", ".join(f"{m} = metric_counts.{m} + EXCLUDED.{m}" for m in MEASURES)}
"""


async def compact(session: AsyncSession, batch: int = COMPACT_BATCH) -> int:
    """Fold up to `batch` deltas; returns how many key rows changed (rows that reach 0 stay until a rebuild;
    readers sum, so a zero row changes nothing)."""
    result = await session.execute(text(COMPACT_SQL), {"batch": batch})
    return int(getattr(result, "rowcount", 0) or 0)


async def metrics_compact(ctx: dict[str, Any]) -> int:
    """Cron job: fold trigger deltas into the rollup until none are left (bounded per run)."""
    total = 0
    for _ in range(20):
        async with job_transaction(ctx) as session:
            changed = await compact(session)
        total += changed
        if changed == 0:
            break
    if total:
        log.info("metrics.compacted", keys=total)
    return total


async def rebuild_org(session: AsyncSession, org_id: uuid.UUID) -> int:
    """Recompute one organization's rollup from leads and events. Blocks writers of leads/events meanwhile
    (SHARE lock) so no delta can slip between the recomputation and the swap."""
    await session.execute(text("LOCK TABLE leads, lead_events IN SHARE MODE"))
    await session.execute(text("DELETE FROM metric_count_deltas WHERE org_id = :org"), {"org": org_id})
    await session.execute(text("DELETE FROM metric_counts WHERE org_id = :org"), {"org": org_id})
    result = await session.execute(
        text(f"INSERT INTO metric_counts ({COLUMNS}) SELECT * FROM metric_recompute(:org) r WHERE {NONZERO}"),
        {"org": org_id},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def disagreements(session: AsyncSession, org_id: uuid.UUID) -> list[dict[str, Any]]:
    """Keys where rollup (counts + deltas) and a recomputation from raw rows differ (empty means exact)."""
    nonzero = " OR ".join(f"sum({m}) <> 0" for m in MEASURES)
    any_row = " OR ".join(f"r.{m} <> 0" for m in MEASURES)
    differ = " OR ".join(f"k.{m} IS DISTINCT FROM f.{m}" for m in MEASURES)
    sql = f"""
    WITH kept AS (
      SELECT {KEY}, {SUMS} FROM (
        SELECT {COLUMNS} FROM metric_counts WHERE org_id = :org
        UNION ALL SELECT {COLUMNS} FROM metric_count_deltas WHERE org_id = :org) k
      GROUP BY {KEY} HAVING {nonzero}
    ), fresh AS (SELECT * FROM metric_recompute(:org) r WHERE {any_row})
    SELECT COALESCE(k.view, f.view) AS view, COALESCE(k.day, f.day) AS day, COALESCE(k.source, f.source) AS source,
           {", ".join(f"k.{m} AS kept_{m}, f.{m} AS fresh_{m}" for m in MEASURES)}
    FROM kept k FULL JOIN fresh f USING ({KEY})
    WHERE {differ}
    """
    return [dict(row._mapping) for row in await session.execute(text(sql), {"org": org_id})]
