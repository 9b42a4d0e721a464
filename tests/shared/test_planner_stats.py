"""A table that outgrew its planner statistics is analyzed by the worker's cron (shared/planner_stats.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import cron
from services.intake.jobs import CRON_JOBS
from shared import planner_stats


async def _write(engine: AsyncEngine, table: str, ids: range) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                f'INSERT INTO "{table}" (id, org)'
                " SELECT g, 1 FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS g"
            ),
            {"first": ids.start, "last": ids.stop - 1},
        )
        # statistics reach pg_stat_user_tables when the backend goes idle, at most once a second: not later
        await connection.execute(text("SELECT pg_stat_force_next_flush()"))


async def _counted(engine: AsyncEngine, table: str, live: int, changes: int) -> None:
    """Wait until the server's counters show the writes (they are flushed asynchronously)."""
    seen = None
    for _ in range(200):
        async with engine.connect() as connection:
            seen = (
                await connection.execute(
                    text("SELECT n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = :name"),
                    {"name": table},
                )
            ).one()
        if tuple(seen) == (live, changes):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{table}: the server counted {seen}, not ({live}, {changes})")


async def _delete(engine: AsyncEngine, table: str, ids: range) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(f'DELETE FROM "{table}" WHERE id >= :first AND id < :stop'), {"first": ids.start, "stop": ids.stop}
        )
        await connection.execute(text("SELECT pg_stat_force_next_flush()"))


@pytest.fixture
async def table(engine: AsyncEngine) -> AsyncIterator[str]:
    name = f"planner_probe_{uuid.uuid4().hex[:10]}"
    async with engine.begin() as connection:
        await connection.execute(text(f'CREATE TABLE "{name}" (id int PRIMARY KEY, org int NOT NULL)'))
    yield name
    async with engine.begin() as connection:
        await connection.execute(text(f'DROP TABLE "{name}"'))


async def test_a_table_is_analyzed_each_time_it_doubles(engine: AsyncEngine, table: str) -> None:
    few = planner_stats.MIN_ROWS - 50
    await _write(engine, table, range(0, few))
    await _counted(engine, table, few, few)
    assert table not in await planner_stats.stale_tables(engine, [table])  # too few rows to be worth an ANALYZE

    await _write(engine, table, range(few, 300))
    await _counted(engine, table, 300, 300)
    assert table in await planner_stats.stale_tables(engine, [table])  # never analyzed, 300 rows
    assert table in await planner_stats.refresh(engine, [table])
    async with engine.connect() as connection:
        counted = await connection.scalar(text("SELECT reltuples FROM pg_class WHERE relname = :n"), {"n": table})
    assert counted == 300
    await _counted(engine, table, 300, 0)
    assert table not in await planner_stats.stale_tables(engine, [table])

    await _write(engine, table, range(300, 550))  # 550 rows on 300 analyzed: not doubled yet
    await _counted(engine, table, 550, 250)
    assert table not in await planner_stats.stale_tables(engine, [table])
    await _write(engine, table, range(550, 600))  # 600: doubled
    await _counted(engine, table, 600, 300)
    assert table in await planner_stats.stale_tables(engine, [table])


async def test_a_table_that_churns_at_a_steady_size_is_left_alone(engine: AsyncEngine, table: str) -> None:
    """Rows written and removed as fast (the rollup deltas the fold deletes) change no plan worth an ANALYZE."""
    await _write(engine, table, range(0, 300))
    await _counted(engine, table, 300, 300)
    assert table in await planner_stats.refresh(engine, [table])
    for start in range(300, 1500, 300):
        await _write(engine, table, range(start, start + 300))
        await _delete(engine, table, range(start - 300, start))
    await _counted(engine, table, 300, 2400)
    assert table not in await planner_stats.stale_tables(engine, [table])


def test_only_guestcard_tables_are_considered() -> None:
    ours = planner_stats.guestcard_tables()
    assert {"leads", "contacts", "contact_identities", "inbound_messages", "outbound_messages"} <= set(ours)
    assert "alembic_version" not in ours


async def test_the_worker_cron_analyzes_what_outgrew_its_statistics(
    engine: AsyncEngine, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cron.refresh_planner_stats in CRON_JOBS
    ours = planner_stats.guestcard_tables()
    monkeypatch.setattr(planner_stats, "guestcard_tables", lambda: [*ours, table])
    await _write(engine, table, range(0, 400))
    await _counted(engine, table, 400, 400)
    assert await cron.refresh_planner_stats({"engine": engine}) >= 1
    await _counted(engine, table, 400, 0)
    async with engine.connect() as connection:
        analyzed = await connection.scalar(
            text("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = :n"), {"n": table}
        )
    assert analyzed
