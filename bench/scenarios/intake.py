"""Intake throughput: sustained web-form webhooks through the whole path, beside raw asyncpg doing its rows.

guestcard side: 1 uvicorn API process + 1 arq worker process (what `guestcard run` starts on a 2-core host),
real PostgreSQL and Redis. The bench POSTs N unique web-form submissions with bounded concurrency and polls
the inbox until every row left `received`; leads/s = N / (last row done - first request sent). Then it checks
integrity: every request 2xx, N inbound rows all `processed`, N distinct leads, nothing failed.
Floor (issue #16): raw asyncpg on 16 connections writing the rows a lead needs (inbound, contact, 2
identities, lead, 1 event) in one transaction per lead: the physical limit, not a replay of guestcard's shape.
guestcard's own rows and write transactions per lead are still measured and reported beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from typing import Any

import asyncpg

from bench.cpu import CpuMeter
from bench.env import BENCH_DB, Guestcard, asyncpg_dsn, create_database, running
from bench.harness import Metric, Report, Stat, console, ratios
from bench.load import (
    DEFAULT_PROFILE,
    DEFAULT_WRITE_TX,
    FLOOR_PROFILE,
    FLOOR_WRITE_TX,
    Floor,
    Sender,
    create_org,
    current_xid,
    mixed_delivery,
    row_profile,
    run_pool,
    set_twilio_token,
    web_form_delivery,
)
from bench.load import web_form as form_body
from bench.scenarios.base import NOT_ON_MAIN, Context

TITLE = "Intake throughput (webhook → lead with next action): web forms, and a web form / Twilio SMS / ILS email mix"
LEADS = {"quick": 500, "full": 5_000}
WARMUP = 100
CONCURRENCY = 32
FLOOR_CONNECTIONS = 16
DATABASE = f"{BENCH_DB}_intake"  # per checkout: GUESTCARD_BENCH_DB names it


async def run(context: Context, report: Report) -> None:
    url = await create_database(context.servers, DATABASE, recreate=True)
    intake = context.route("/v1/intake/{", "{kind")
    available = bool(intake and context.route("/v1/internal/signals"))
    count = LEADS[context.mode]
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=FLOOR_CONNECTIONS, max_size=FLOOR_CONNECTIONS)
    gc_rates: list[float] = []
    mix_rates: list[float] = []
    floor_rates: list[float] = []
    profile, write_tx = dict(DEFAULT_PROFILE), DEFAULT_WRITE_TX
    checks: list[dict[str, Any]] = []
    try:
        guestcard = Guestcard(url, context.servers.redis_url)
        with running(guestcard) if available else contextlib.nullcontext():
            if available:
                assert intake is not None
                await guestcard_round(pool, url, guestcard.base_url, intake, WARMUP, "warmup")
            await floor_round(pool, url, WARMUP, "warmup")
            for index in range(context.n_rounds):
                if available:
                    assert intake is not None
                    result = await guestcard_round(
                        pool, url, guestcard.base_url, intake, count, f"r{index}", guestcard.component_pids()
                    )
                    if result.get("skipped"):
                        available = False
                        report.reason = NOT_ON_MAIN + f" ({result['skipped']})"
                    else:
                        gc_rates.append(result["leads_per_s"])
                        profile, write_tx = result["profile"], result["write_tx"]
                        checks.append(result)
                        mixed = await guestcard_round(
                            pool,
                            url,
                            guestcard.base_url,
                            intake,
                            count,
                            f"mix{index}",
                            guestcard.component_pids(),
                            mix=True,
                        )
                        mix_rates.append(mixed["leads_per_s"])
                        checks.append(mixed)
                floor_rates.append(await floor_round(pool, url, count, f"r{index}"))
                console.print(
                    f"  round {index + 1}: guestcard web form {gc_rates[-1] if gc_rates else 0:,.0f} leads/s, "
                    f"mix {mix_rates[-1] if mix_rates else 0:,.0f} leads/s, floor {floor_rates[-1]:,.0f} leads/s"
                )
    finally:
        await pool.close()
    clean = bool(checks) and all(check["clean"] for check in checks)
    for kind, rates in (("web form", gc_rates), ("mix", mix_rates)):
        label = f"intake {kind}, {count:,} leads/round"
        ratio = ratios(rates, floor_rates) if rates else None
        if rates:  # speed_to_lead reads its offered rates beside what this host applied
            context.applied[kind] = Stat.of(rates).median
        report.add(
            Metric(
                name=label,
                unit="leads/s",
                guestcard=Stat.of(rates) if rates else None,
                floor=Stat.of(floor_rates),
                ratio=ratio,
                target="≥ 0.15× floor (aim 0.2×), no error/lost/dup",
                passed=(ratio.median >= 0.15 and clean) if ratio else None,
                note=(
                    f"floor = raw asyncpg, {FLOOR_CONNECTIONS} connections, {FLOOR_WRITE_TX} write tx/lead, rows/lead "
                    f"{FLOOR_PROFILE}; guestcard (web form) spent {write_tx} write tx/lead, rows/lead {profile}"
                    + (
                        "; mix = web form, Twilio SMS (signed), raw Apartments.com email in turn"
                        if "mix" in label
                        else ""
                    )
                ),
            )
        )
    report.details.update(leads_per_round=count, concurrency=CONCURRENCY, write_tx_per_lead=write_tx)
    report.details.update(rows_per_lead=profile, checks=checks)
    if not available and not report.reason:
        report.reason = NOT_ON_MAIN + " (POST /v1/intake/{intake_key}/{kind} or /v1/internal/signals missing)"
    if checks and not clean:
        report.reason = "integrity problems: " + "; ".join(c["problems"] for c in checks if not c["clean"])


async def guestcard_round(
    pool: asyncpg.Pool,
    url: str,
    base_url: str,
    intake: str,
    count: int,
    label: str,
    pids: dict[int, str] | None = None,
    mix: bool = False,
) -> dict[str, Any]:
    org = await create_org(url, f"bench intake {label}")
    org_id = uuid.UUID(org["org_id"])
    path = intake.replace("{intake_key}", org["intake_key"])
    if mix:
        await set_twilio_token(base_url, org["api_key"])
    else:
        path = path.replace("{kind}", "web-form")

    def payload(serial: int, run: str) -> Any:
        return mixed_delivery(serial, run, base_url, path) if mix else web_form_delivery(serial, run)

    run_id = uuid.uuid4().hex[:8]
    async with pool.acquire() as connection:
        xid_before = await current_xid(connection)
    meter = CpuMeter(dict(pids or {}))
    meter.start()
    started = time.perf_counter()
    async with Sender(base_url, path, CONCURRENCY) as sender:
        first = await sender.send(payload(0, run_id))
        if first.status == 404:
            return {"skipped": f"POST {intake} answered 404"}
        sending = asyncio.gather(*(sender.send(payload(serial, run_id)) for serial in range(1, count)))
        done, finished_at = await wait_done(pool, org_id, count, limit_s=max(60.0, count / 5))
        sent = [first, *await sending]
    elapsed = finished_at - started
    cpu = meter.stop()
    async with pool.acquire() as connection:
        xid_after = await current_xid(connection)
        state = dict(
            await connection.fetchrow(
                "SELECT count(*) AS inbound, count(*) FILTER (WHERE status = 'processed') AS processed, "
                "count(*) FILTER (WHERE status = 'failed') AS failed, "
                "count(*) FILTER (WHERE status = 'ignored') AS ignored, "
                "count(DISTINCT lead_id) AS distinct_leads FROM inbound_messages WHERE org_id = $1",
                org_id,
            )
        )
        state["leads"] = await connection.fetchval("SELECT count(*) FROM leads WHERE org_id = $1", org_id)
        state["with_next_action"] = await connection.fetchval(
            "SELECT count(*) FROM leads WHERE org_id = $1 AND next_action_type IS NOT NULL", org_id
        )
        profile = await row_profile(connection, org_id, count)
    errors = [s.status for s in sent if not 200 <= s.status < 300]
    problems = []
    if errors:
        problems.append(f"{len(errors)} non-2xx ({sorted(set(errors))}: {sender.errors[:2]})")
    if state["processed"] != count:
        problems.append(
            f"{state['processed']}/{count} processed ({state['failed']} failed, {state['ignored']} ignored)"
        )
    if state["leads"] != count or state["distinct_leads"] != count:
        problems.append(f"{state['leads']} leads / {state['distinct_leads']} distinct for {count} submissions")
    if state["with_next_action"] != state["leads"]:
        problems.append(f"{state['leads'] - state['with_next_action']} leads without a next action")
    if not done:
        problems.append("timed out")
    return {
        "label": label,
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "leads_per_s": count / elapsed,
        "seconds": round(elapsed, 2),
        "write_tx": max(1, round((xid_after - xid_before) / count)),
        "write_tx_measured": round((xid_after - xid_before) / count, 2),
        "profile": profile,
        "state": state,
        "cpu_seconds": cpu,
        "cpu_ms_per_lead": {key: round(value * 1000 / count, 2) for key, value in cpu.items()},
        "clean": not problems,
        "problems": ", ".join(problems),
    }


async def wait_done(
    pool: asyncpg.Pool, org_id: uuid.UUID, count: int, limit_s: float, poll_s: float = 0.02
) -> tuple[bool, float]:
    """Poll the inbox until `count` rows have left `received` (or the timeout); return when it saw that.

    Each poll costs the database under test ~1-2.5 ms during a burst of 5,000 (its partial indexes carry the
    entries of rows that left `received` until vacuum): a long round polls less often (`poll_s`)."""
    deadline = time.perf_counter() + limit_s
    async with pool.acquire() as connection:
        while time.perf_counter() < deadline:
            # the rows still `received` first (a partial index holds only those): counting the rows that left
            # it, every 20 ms, read the whole organization's inbox each time, a cost on the database under
            # test that grew with the burst (5,000 rows: ~1-2 ms a poll)
            waiting = await connection.fetchval(
                "SELECT count(*) FROM inbound_messages WHERE org_id = $1 AND status = 'received'", org_id
            )
            if waiting == 0:
                left = await connection.fetchval(
                    "SELECT count(*) FROM inbound_messages WHERE org_id = $1 AND status <> 'received'", org_id
                )
                if left >= count:
                    return True, time.perf_counter()
            await asyncio.sleep(poll_s)
    return False, time.perf_counter()


async def floor_round(pool: asyncpg.Pool, url: str, count: int, label: str) -> float:
    org = await create_org(url, f"bench floor {label}")
    floor = Floor(uuid.UUID(org["org_id"]), FLOOR_PROFILE, FLOOR_WRITE_TX)
    run_id = uuid.uuid4().hex[:8]
    started = time.perf_counter()

    async def work(connection: asyncpg.Connection, serial: int) -> None:
        await floor.one(connection, form_body(serial, run_id))

    await run_pool(pool, count, work)
    rate = count / (time.perf_counter() - started)
    await floor.retire(pool)
    return rate
