"""A burst (issue #16): N web-form deliveries at once (64 in flight). Two figures: how fast the webhooks are
accepted (requests/s: the answer must not wait for the rest of the pipeline), and how long until every one
is applied (seconds from the first request to the last inbox row done).

Floors, same run: accepting = raw asyncpg inserting the inbox rows, one transaction each, 16 connections;
applying = raw asyncpg writing every lead's rows (inbound, contact, 2 identities, lead, event) in one
transaction per lead, 16 connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from typing import Any

import asyncpg

from bench.env import BENCH_DB, Guestcard, asyncpg_dsn, create_database, running
from bench.harness import Metric, Report, Stat, console, ratios
from bench.load import (
    FLOOR_PROFILE,
    FLOOR_WRITE_TX,
    Floor,
    Sender,
    create_org,
    first_replies,
    run_pool,
    web_form_delivery,
)
from bench.load import web_form as form_body
from bench.scenarios.base import NOT_ON_MAIN, Context
from bench.scenarios.intake import wait_done

TITLE = "Burst (N deliveries at once: accepted req/s, seconds until all applied)"
DELIVERIES = {"quick": 2_000, "full": 5_000}
ROUNDS = {"quick": 1, "full": 3}
CONCURRENCY = 64
FLOOR_CONNECTIONS = 16
APPLY_LIMIT_S = 30.0
ACCEPT_TARGET = 500.0
DATABASE = f"{BENCH_DB}_burst"  # per checkout: GUESTCARD_BENCH_DB names it


async def run(context: Context, report: Report) -> None:
    url = await create_database(context.servers, DATABASE, recreate=True)
    intake = context.route("/v1/intake/{", "{kind")
    count = DELIVERIES[context.mode]
    rounds = context.rounds or ROUNDS[context.mode]
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=FLOOR_CONNECTIONS, max_size=FLOOR_CONNECTIONS)
    accepted: list[float] = []
    applied: list[float] = []
    floor_accept: list[float] = []
    floor_apply: list[float] = []
    checks: list[dict[str, Any]] = []
    try:
        guestcard = Guestcard(url, context.servers.redis_url)
        with running(guestcard) if intake else contextlib.nullcontext():
            for index in range(rounds):
                if intake:
                    result = await guestcard_round(pool, url, guestcard.base_url, intake, count, f"b{index}")
                    accepted.append(result["accepted_per_s"])
                    applied.append(result["applied_s"])
                    checks.append(result)
                accept_rate, apply_s = await floor_round(pool, url, count, index)
                floor_accept.append(accept_rate)
                floor_apply.append(apply_s)
                console.print(
                    f"  round {index + 1}: accepted {accepted[-1] if accepted else 0:,.0f}/s (floor "
                    f"{accept_rate:,.0f}/s), all applied in {applied[-1] if applied else 0:.1f} s (floor "
                    f"{apply_s:.1f} s), every first reply sent in "
                    f"{checks[-1]['replied_s'] if checks and checks[-1]['replied_s'] is not None else '-'} s, "
                    f"load average {[round(v, 2) for v in os.getloadavg()]}"
                )
    finally:
        await pool.close()
    clean = bool(checks) and all(check["clean"] for check in checks)
    report.add(
        Metric(
            name=f"burst of {count:,}: accepted",
            unit="req/s",
            guestcard=Stat.of(accepted) if accepted else None,
            floor=Stat.of(floor_accept),
            ratio=ratios(accepted, floor_accept) if accepted else None,
            target=f"≥ {ACCEPT_TARGET:.0f} req/s",
            passed=(Stat.of(accepted).median >= ACCEPT_TARGET and clean) if accepted else None,
            note="floor = raw asyncpg inbox inserts, one transaction each, 16 connections",
        )
    )
    report.add(
        Metric(
            name=f"burst of {count:,}: all applied",
            unit="s",
            guestcard=Stat.of(applied) if applied else None,
            floor=Stat.of(floor_apply),
            ratio=ratios(applied, floor_apply) if applied else None,
            target=f"≤ {APPLY_LIMIT_S:.0f} s" + (" (quick: 2,000; full: 5,000)" if context.mode == "quick" else ""),
            passed=(Stat.of(applied).median <= APPLY_LIMIT_S and clean) if applied else None,
            note="floor = raw asyncpg, every lead's rows in one transaction per lead, 16 connections",
        )
    )
    replied = [check["replied_s"] for check in checks if check.get("replied_s") is not None]
    report.add(
        Metric(
            name=f"burst of {count:,}: every first reply sent",
            unit="s",
            guestcard=Stat.of(replied) if replied else None,
            note="first webhook stored → the last lead's first automated reply accepted by the provider; no floor",
        )
    )
    report.details.update(deliveries=count, concurrency=CONCURRENCY, checks=checks)
    if not intake:
        report.reason = NOT_ON_MAIN + " (POST /v1/intake/{intake_key}/{kind} missing)"
    elif not clean:
        report.reason = "integrity problems: " + "; ".join(c["problems"] for c in checks if not c["clean"])


async def guestcard_round(
    pool: asyncpg.Pool, url: str, base_url: str, intake: str, count: int, label: str
) -> dict[str, Any]:
    org = await create_org(url, f"bench burst {label}")
    org_id = uuid.UUID(org["org_id"])
    path = intake.replace("{intake_key}", org["intake_key"]).replace("{kind}", "web-form")
    run_id = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    async with Sender(base_url, path, CONCURRENCY) as sender:
        sending = asyncio.gather(*(sender.send(web_form_delivery(serial, run_id)) for serial in range(count)))
        done, finished_at = await wait_done(pool, org_id, count, limit_s=max(120.0, count / 10), poll_s=0.1)
        sent = await sending
    last_ack = max(item.at for item in sent)
    replied_s = (await first_replies(pool, org_id, limit_s=max(120.0, count / 10))).span_s
    async with pool.acquire() as connection:
        processed = await connection.fetchval(
            "SELECT count(*) FROM inbound_messages WHERE org_id = $1 AND status = 'processed'", org_id
        )
        leads = await connection.fetchval("SELECT count(*) FROM leads WHERE org_id = $1", org_id)
    errors = [item.status for item in sent if not 200 <= item.status < 300]
    problems = []
    if errors:
        problems.append(f"{len(errors)} non-2xx ({sorted(set(errors))}: {sender.errors[:2]})")
    if processed != count or leads != count:
        problems.append(f"{processed}/{count} processed, {leads} leads")
    if not done:
        problems.append("timed out")
    return {
        "label": label,
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "accepted_per_s": count / (last_ack - started),
        "applied_s": finished_at - started,
        "replied_s": replied_s,
        "clean": not problems,
        "problems": ", ".join(problems),
    }


async def floor_round(pool: asyncpg.Pool, url: str, count: int, index: int) -> tuple[float, float]:
    org = await create_org(url, f"bench burst floor {index}")
    receive = Floor(uuid.UUID(org["org_id"]), FLOOR_PROFILE, FLOOR_WRITE_TX)
    run_id = uuid.uuid4().hex[:8]
    started = time.perf_counter()

    async def accept(connection: asyncpg.Connection, serial: int) -> None:
        await receive.receive(connection, form_body(serial, run_id))

    await run_pool(pool, count, accept)
    accept_rate = count / (time.perf_counter() - started)
    org = await create_org(url, f"bench burst floor apply {index}")
    whole = Floor(uuid.UUID(org["org_id"]), FLOOR_PROFILE, FLOOR_WRITE_TX)
    started = time.perf_counter()

    async def apply(connection: asyncpg.Connection, serial: int) -> None:
        await whole.one(connection, form_body(serial, run_id))

    await run_pool(pool, count, apply)
    apply_s = time.perf_counter() - started
    await receive.retire(pool)
    await whole.retire(pool)
    return accept_rate, apply_s
