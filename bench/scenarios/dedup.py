"""Dedup cost: `services/intake/matching.py match_signal` per signal in a 10k-contact organization and in
the big one (1M contacts in full mode), beside the same identity lookup in raw asyncpg.

Half the signals carry the email and phone of an existing contact (a repeat renter), half are new people.
Each call gets its own session from guestcard's engine factory, as a worker job does. Flat means the cost
at the big size stays within 1.5× of the cost at 10k (index lookups, no scan growing with the table).
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.env import asyncpg_dsn
from bench.harness import Metric, Report, Stat, console, percentile, ratios
from bench.scenarios.base import Context

TITLE = "Dedup cost per signal (match_signal at 10k vs big)"
SIGNALS = {"quick": 400, "full": 1_000}
IDENTITY_SQL = (
    "SELECT kind, value, contact_id FROM contact_identities WHERE org_id = $1 "
    "AND ((kind = 'email' AND value = $2) OR (kind = 'phone' AND value = $3))"
)


async def run(context: Context, report: Report) -> None:
    from services.intake.matching import match_signal
    from shared.db import make_engine, make_sessionmaker

    dataset = await context.dataset()
    count = SIGNALS[context.mode]
    connection = await asyncpg.connect(asyncpg_dsn(dataset["url"]))
    engine = make_engine(dataset["url"], pool_size=2)
    sessionmaker = make_sessionmaker(engine)
    sizes = {name: dataset["counts"][name]["contacts"] for name in ("small", "main")}
    medians: dict[str, list[float]] = {"small": [], "main": []}
    p99s: dict[str, list[float]] = {"small": [], "main": []}
    raw_medians: dict[str, list[float]] = {"small": [], "main": []}
    try:
        signals = {name: await build_signals(connection, dataset["orgs"][name]["org_id"], count) for name in sizes}
        for index in range(context.n_rounds + 1):  # round 0 warms caches and is not kept
            for name, (org_id, items) in signals.items():
                timings = []
                for signal, _ in items:
                    started = time.perf_counter()
                    async with sessionmaker() as session, session.begin():
                        await match_signal(session, org_id, signal)
                    timings.append((time.perf_counter() - started) * 1e6)
                raw_timings = []
                for _, (email, phone) in items:
                    started = time.perf_counter()
                    await connection.fetch(IDENTITY_SQL, org_id, email, phone)
                    raw_timings.append((time.perf_counter() - started) * 1e6)
                if index:
                    medians[name].append(percentile(timings, 50))
                    p99s[name].append(percentile(timings, 99))
                    raw_medians[name].append(percentile(raw_timings, 50))
            if index:
                console.print(
                    f"  round {index}: match_signal p50 {medians['small'][-1]:.0f} µs at {sizes['small']:,}, "
                    f"{medians['main'][-1]:.0f} µs at {sizes['main']:,}"
                )
    finally:
        await connection.close()
        await engine.dispose()
    for name in ("small", "main"):
        report.add(
            Metric(
                name=f"match_signal p50 at {sizes[name]:,} contacts",
                unit="µs",
                guestcard=Stat.of(medians[name]),
                floor=Stat.of(raw_medians[name]),
                ratio=ratios(medians[name], raw_medians[name]),
                note=f"p99 {Stat.of(p99s[name]).median:.0f} µs",
            )
        )
    flat = ratios(medians["main"], medians["small"])
    report.add(
        Metric(
            name=f"flatness: {sizes['main']:,} vs {sizes['small']:,} contacts",
            unit="µs",
            guestcard=Stat.of(medians["main"]),
            floor=Stat.of(medians["small"]),
            ratio=flat,
            target="≤ 1.5× (floor column = at 10k)",
            passed=flat.median <= 1.5,
        )
    )
    report.details.update(signals_per_round=count, contacts=sizes)


async def build_signals(connection: asyncpg.Connection, org: str, count: int) -> tuple[uuid.UUID, list[Any]]:
    from shared.schemas.signal import LeadSignal

    org_id = uuid.UUID(org)
    rng = random.Random(11)
    known = await connection.fetch(
        "SELECT first_name, last_name, primary_email, primary_phone FROM contacts WHERE org_id = $1 "
        "ORDER BY random() LIMIT $2",
        org_id,
        count // 2,
    )
    people = [dict(row) for row in known]
    for serial in range(count - len(people)):
        people.append({"first_name": "New", "last_name": f"Person{serial}",
                       "primary_email": f"new.person.{serial}.{rng.randrange(10**6)}@example.org",
                       "primary_phone": f"+1646{5_000_000 + serial:07d}"})  # fmt: skip
    rng.shuffle(people)
    items = []
    for person in people:
        signal = LeadSignal.model_validate(
            {
                "event": "inquiry",
                "channel": "email",
                "occurred_at": datetime.now(UTC),
                "contact": {"first_name": person["first_name"], "last_name": person["last_name"],
                            "email": person["primary_email"], "phone": person["primary_phone"]},
                "source": {"source": "zillow"},
            }
        )  # fmt: skip
        items.append((signal, (person["primary_email"] or "", person["primary_phone"] or "")))
    return org_id, items
