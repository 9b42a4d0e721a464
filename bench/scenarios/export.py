"""Export: the CSV export of every lead of the big organization, rows/s and the API's peak memory, beside
PostgreSQL's own `COPY (same query) TO STDOUT CSV`.

guestcard side: `GET /v1/leads/export.csv` on one API process, streamed by the bench, rows counted; a
sampler reads the API process's RSS every 20 ms, and the figure is peak minus the RSS just before the
request (flat = the growth does not depend on the row count; the target caps it at 64 MiB).
Floor: the export's own statement (guestcard's query builder, rendered by bench/sql.py) inside
`COPY … TO STDOUT WITH CSV HEADER` through asyncpg, bytes discarded as they arrive.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import psutil

from bench.env import Guestcard, asyncpg_dsn, running
from bench.harness import Metric, Report, Stat, console, ratios
from bench.scenarios.base import NOT_ON_MAIN, Context

TITLE = "Export (CSV of every lead)"
FLAT_MIB = 64


async def run(context: Context, report: Report) -> None:
    path = context.route("/v1/leads/export")
    if not path:
        report.skip(NOT_ON_MAIN + " (GET /v1/leads/export.csv missing)")
        return
    dataset = await context.dataset()
    org = dataset["orgs"]["main"]
    org_id = uuid.UUID(org["org_id"])
    expected = dataset["counts"]["main"]["leads"]
    gc_rates: list[float] = []
    floor_rates: list[float] = []
    growth: list[float] = []
    guestcard = Guestcard(dataset["url"], context.servers.redis_url)
    headers = {"Authorization": f"Bearer {org['api_key']}"}
    connection = await asyncpg.connect(asyncpg_dsn(dataset["url"]))
    try:
        with running(guestcard, worker=False):
            api = psutil.Process(guestcard.pid("api"))
            async with httpx.AsyncClient(base_url=guestcard.base_url, headers=headers, timeout=600) as client:
                for index in range(context.n_rounds):
                    rows, seconds, peak = await export_http(client, path, api)
                    if rows != expected:
                        report.reason = f"export returned {rows:,} rows, the organization has {expected:,}"
                    copied, copy_seconds = await export_copy(connection, org_id)
                    gc_rates.append(rows / seconds)
                    floor_rates.append(copied / copy_seconds)
                    growth.append(peak)
                    console.print(
                        f"  round {index + 1}: guestcard {rows / seconds:,.0f} rows/s (RSS +{peak:.1f} MiB), "
                        f"COPY {copied / copy_seconds:,.0f} rows/s"
                    )
    finally:
        await connection.close()
    ratio = ratios(gc_rates, floor_rates)
    memory = Stat.of(growth)
    report.add(
        Metric(
            name=f"export {expected:,} leads",
            unit="rows/s",
            guestcard=Stat.of(gc_rates),
            floor=Stat.of(floor_rates),
            ratio=ratio,
            target="≥ 0.30× COPY",
            passed=ratio.median >= 0.30,
        )
    )
    report.add(
        Metric(
            name="API peak RSS growth during export",
            unit="MiB",
            guestcard=memory,
            target=f"flat: ≤ {FLAT_MIB} MiB",
            passed=memory.max <= FLAT_MIB,
        )
    )
    report.details.update(rows=expected)


async def export_http(client: httpx.AsyncClient, path: str, api: psutil.Process) -> tuple[int, float, float]:
    baseline = api.memory_info().rss
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, api.memory_info().rss)
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    lines = 0
    started = time.perf_counter()
    try:
        async with client.stream("GET", path) as response:
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} → {response.status_code}: {(await response.aread())[:300]!r}")
            async for chunk in response.aiter_bytes():
                lines += chunk.count(b"\n")
    finally:
        done.set()
        await sampler
    seconds = time.perf_counter() - started
    return lines - 1, seconds, (peak - baseline) / 2**20  # minus the header line


async def export_copy(connection: asyncpg.Connection, org_id: uuid.UUID) -> tuple[int, float]:
    from sqlalchemy.dialects import postgresql

    from services.api.leads.export import export_query
    from services.api.leads.queries import LeadFilters

    statement = export_query(org_id, LeadFilters())
    sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    lines = 0

    def count(chunk: bytes) -> None:
        nonlocal lines
        lines += chunk.count(b"\n")

    started = time.perf_counter()
    await connection.copy_from_query(sql, output=_sink(count), format="csv", header=True)
    return lines - 1, time.perf_counter() - started


def _sink(count: object) -> object:
    async def write(chunk: bytes) -> None:
        count(chunk)  # type: ignore[operator]

    return write
