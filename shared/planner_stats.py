"""Planner statistics for tables that outgrew them: ANALYZE a table that has doubled since it was last analyzed.

PostgreSQL plans a statement from the table's statistics, and keeps that plan (a foreign-key check's, a
prepared statement's) until the statistics change. A fresh database, or an organization's first burst, writes
thousands of rows into tables whose statistics still say empty. Planned while `leads` was empty, the
foreign-key check `SELECT 1 FROM leads WHERE id = $1 AND org_id = $2` took an index that leads with
`org_id` and filtered on `id`: it read every lead of the organization, 14 times per new lead, and the
first-reply update of a lead read ~2,000 pages. A burst of 5,000 leads went quadratic until autovacuum's
next round (its naptime is a minute, and it analyzes after 10 % growth, so a burst is over before it helps).

The worker's cron asks `pg_stat_user_tables` every few seconds and analyzes each of our tables whose live
rows reached twice what its last ANALYZE counted (and at least `MIN_ROWS`; never analyzed counts as none). A
growing table is analyzed at ~1×, 2×, 4× … its size, so a plan is never more than one doubling stale; a table
of a million rows must reach two million, which leaves big tables to autovacuum. Size, not changes: a table
that churns at a steady size (the rollup deltas, inserted by triggers and folded away) is never analyzed here,
where counting its changes analyzed it every few seconds and made every connection plan its statements again.
`SKIP_LOCKED`: a table autovacuum is working on is skipped, never waited for. A table the connecting role
does not own is skipped by PostgreSQL itself (a warning, not an error).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.logging import get_logger
from shared.models import Base

log = get_logger(__name__)

MIN_ROWS = 200  # below this, a wrong plan costs less than the ANALYZE
GROWTH = 2.0  # live rows now ÷ rows the last ANALYZE counted

STALE_TABLES_SQL = text(
    "SELECT s.relname FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid"
    " WHERE s.schemaname = current_schema() AND s.relname = ANY(CAST(:tables AS text[]))"
    " AND s.n_mod_since_analyze > 0 AND s.n_live_tup >= :min_rows"
    " AND s.n_live_tup >= GREATEST(c.reltuples, 0) * :growth"
    " ORDER BY s.relname"
)


def guestcard_tables() -> list[str]:
    """Our own tables (the models'): another application's tables in the same schema are left alone."""
    return sorted(Base.metadata.tables)


async def stale_tables(engine: AsyncEngine, among: Collection[str] | None = None) -> list[str]:
    async with engine.connect() as connection:
        return await _stale(connection, among)


async def refresh(engine: AsyncEngine, among: Collection[str] | None = None) -> list[str]:
    """ANALYZE every table (of ours, or of `among`) that outgrew its statistics; returns their names.
    One connection, outside any transaction (ANALYZE then commits each table's statistics as it goes)."""
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        tables = await _stale(autocommit, among)
        if not tables:
            return []
        # names come from the catalog, quoted as identifiers; ANALYZE takes no bind parameters
        quoted = ", ".join('"' + name.replace('"', '""') + '"' for name in tables)
        await autocommit.execute(text(f"ANALYZE (SKIP_LOCKED) {quoted}"))
    log.info("planner_stats.analyzed", tables=tables)
    return tables


async def _stale(connection: AsyncConnection, among: Collection[str] | None) -> list[str]:
    names = sorted(among) if among is not None else guestcard_tables()
    rows = await connection.execute(STALE_TABLES_SQL, {"tables": names, "min_rows": MIN_ROWS, "growth": GROWTH})
    return [str(name) for (name,) in rows]
