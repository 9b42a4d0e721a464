"""CSV import with dedup: rows/s of an import batch (services/api/imports/engine.py, run in-process as the
worker job and the CLI run it) into an organization that already knows half the renters, beside
PostgreSQL's own `COPY` of the same rows into a plain table (no matching, no timeline, no outbox).

The file per round: 50 % new renters, 40 % known renters by email (attached), 10 % a known renter's phone
under another name (sent to review). The seed (the known renters) is imported first and not timed; every
round gets a fresh organization. Target: ≥ 2,000 rows/s (issue #15).
"""

from __future__ import annotations

import time
import uuid

import asyncpg

from bench.env import BENCH_DB, asyncpg_dsn, create_database, drop_database
from bench.harness import Metric, Report, Stat, console, ratios
from bench.scenarios.base import Context

TITLE = "CSV import with dedup (rows/s) beside COPY"
ROWS = {"quick": 10_000, "full": 50_000}
DATABASE = f"{BENCH_DB}_import"  # per checkout, as the read dataset (GUESTCARD_BENCH_DB)
TARGET = 2_000


def word(n: int) -> str:
    """A name-like word per number (letters only, as real names are)."""
    letters = ""
    n += 1
    while n:
        n, rest = divmod(n, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[rest]
    return letters.capitalize()


def phone(area: str, n: int) -> str:
    return f"+1{area}{200 + n // 10_000}{n % 10_000:04d}"


def files(rows: int, salt: str) -> tuple[bytes, bytes, list[tuple[str, ...]]]:
    """(seed, file, the file's rows as tuples for COPY)."""
    known = rows // 2
    seed = ["Name,Email,Phone,Lead Source,Beds,Budget,Notes"]
    for n in range(known):
        seed.append(f"Kay{word(n).lower()} Renter,known{n}.{salt}@example.com,{phone('202', n)},zillow,2,$1500,seed")
    body = [seed[0]]
    records = []
    for n in range(rows):
        if n % 10 < 5:
            row = (
                f"Nia{word(n).lower()} Person",
                f"new{n}.{salt}@example.com",
                phone("303", n),
                "website",
                "1",
                "$1200",
                "hi",
            )
        elif n % 10 < 9:
            k = n % known
            row = (
                f"Kay{word(k).lower()} Renter",
                f"known{k}.{salt}@example.com",
                "",
                "zumper",
                "2",
                "$1600",
                f"again {n}",
            )
        else:
            k = n % known
            row = (f"Oto{word(n).lower()} Someone", "", phone("202", k), "phone", "", "", "shared line")
        body.append(",".join(row))
        records.append(row)
    return ("\n".join(seed) + "\n").encode(), ("\n".join(body) + "\n").encode(), records


async def run(context: Context, report: Report) -> None:
    from services.api.auth.service import create_organization
    from services.api.imports.batches import create_batch, run_batch
    from shared.db import make_engine, make_sessionmaker

    rows = ROWS[context.mode]
    url = await create_database(context.servers, DATABASE, recreate=True)
    engine = make_engine(url, pool_size=3)
    sessionmaker = make_sessionmaker(engine)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    rates: list[float] = []
    floors: list[float] = []
    counts: dict[str, int] = {}

    async def import_bytes(org_id: uuid.UUID, raw: bytes) -> dict[str, int]:
        async with sessionmaker() as session, session.begin():
            batch = await create_batch(
                session,
                org_id,
                None,
                raw,
                preset="generic",
                mapping={},
                dry_run=False,
                default_property_id=None,
                filename="bench.csv",
                enqueue=False,
            )
        done = await run_batch(sessionmaker, batch.id)
        assert done is not None and done.status == "done", done and done.failure
        return dict(done.counts)

    try:
        await connection.execute(
            "CREATE UNLOGGED TABLE IF NOT EXISTS bench_copy (name text, email text, phone text, source text, "
            "beds text, budget text, notes text)"
        )
        for index in range(context.n_rounds):
            salt = uuid.uuid4().hex[:6]
            async with sessionmaker() as session, session.begin():
                org = (await create_organization(session, f"import bench {salt}")).org
            seed, body, records = files(rows, salt)
            await import_bytes(org.id, seed)
            started = time.perf_counter()
            counts = await import_bytes(org.id, body)
            seconds = time.perf_counter() - started
            await connection.execute("TRUNCATE bench_copy")
            copy_started = time.perf_counter()
            await connection.copy_records_to_table("bench_copy", records=records)
            copy_seconds = time.perf_counter() - copy_started
            rates.append(rows / seconds)
            floors.append(rows / copy_seconds)
            console.print(
                f"  round {index + 1}: import {rows / seconds:,.0f} rows/s ({counts}), COPY {rows / copy_seconds:,.0f}"
            )
    finally:
        await connection.close()
        await engine.dispose()
        await drop_database(context.servers, DATABASE)
    figure = Stat.of(rates)
    report.add(
        Metric(
            name=f"import {rows:,} rows, half known (dedup)",
            unit="rows/s",
            guestcard=figure,
            floor=Stat.of(floors),
            ratio=ratios(rates, floors),
            target=f"≥ {TARGET:,} rows/s",
            passed=figure.median >= TARGET,
            note=", ".join(f"{k} {v:,}" for k, v in counts.items() if v),
        )
    )
    report.details.update(rows=rows, counts=counts)
