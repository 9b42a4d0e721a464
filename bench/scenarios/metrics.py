"""Metrics at size: every metrics call over HTTP on the big organization (1 M leads / 5 M events in full
mode), beside the raw-SQL time for the same answer.

guestcard side: one API process; requests one at a time with the org's API key, no If-None-Match (every
answer computed). Floor ("raw"): the same answer computed from raw rows (leads, lead_events) by the same
query builder with rollups off, executed directly on the database without HTTP: what the answer costs
without rollups. The bench also checks that both give the same numbers.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.env import Guestcard, running
from bench.harness import Metric, Report, Stat, console, percentile, ratios
from bench.scenarios.base import NOT_ON_MAIN, Context

TITLE = "Metrics at size (funnel, activity, attribution, response time, health)"
REQUESTS = {"quick": 15, "full": 30}  # per call per round
RAW_REQUESTS = {"quick": 3, "full": 1}  # raw aggregation is slow (seconds at 1 M): fewer samples


def cases(now: datetime) -> list[dict[str, Any]]:
    end = (now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)).astimezone(UTC)
    month, year = end - timedelta(days=30), end - timedelta(days=365)
    iso = {"month": (month.isoformat(), end.isoformat()), "year": (year.isoformat(), end.isoformat())}
    out = []
    for name, path, params, window, group, fn in (
        ("funnel cohort by source, default 30 d", "funnel", {}, "month", "source", "cohort"),
        ("funnel cohort by source, 365 d", "funnel", {"group_by": "source"}, "year", "source", "cohort"),
        ("funnel cohort by week, 365 d", "funnel", {"group_by": "week"}, "year", "week", "cohort"),
        ("funnel cohort by owner, 365 d", "funnel", {"group_by": "owner"}, "year", "owner", "cohort"),
        ("funnel activity by month, 365 d", "funnel", {"group_by": "month", "view": "activity"}, "year", "month",
         "activity"),
        ("funnel activity by week, 365 d", "funnel", {"group_by": "week", "view": "activity"}, "year", "week",
         "activity"),
        ("attribution, 365 d", "attribution", {}, "year", None, "attribution"),
        ("response time, default 30 d", "response-time", {}, "month", "none", "response"),
        ("response time by source, 30 d", "response-time", {"group_by": "source"}, "month", "source", "response"),
        ("response time by property, 30 d", "response-time", {"group_by": "property"}, "month", "property",
         "response"),
        ("response time by owner, 30 d", "response-time", {"group_by": "owner"}, "month", "owner", "response"),
        ("response time by week, 30 d", "response-time", {"group_by": "week"}, "month", "week", "response"),
        ("response time by property, 365 d", "response-time", {"group_by": "property"}, "year", "property",
         "response"),
        ("health, default 30 d", "health", {}, "month", None, "health"),
    ):  # fmt: skip
        start, stop = iso[window]
        http_params = dict(params)
        if window == "year":
            http_params.update({"from": start, "to": stop})
        out.append({"name": name, "path": f"/v1/metrics/{path}", "params": http_params, "window": (start, stop),
                    "group": group, "fn": fn})  # fmt: skip
    return out


async def run(context: Context, report: Report) -> None:
    if not context.route("/v1/metrics/attribution"):
        report.skip(NOT_ON_MAIN + " (GET /v1/metrics/attribution missing)")
        return
    from services.api.auth.service import Principal
    from shared.db import make_engine, make_sessionmaker
    from shared.enums import Role

    dataset = await context.dataset()
    org = dataset["orgs"]["main"]
    org_id = uuid.UUID(org["org_id"])
    principal = Principal(org_id=org_id, role=Role.admin)
    engine = make_engine(dataset["url"], pool_size=2)
    sessionmaker = make_sessionmaker(engine)
    inputs = cases(datetime.now(UTC))
    results: dict[str, dict[str, list[float]]] = {c["name"]: {"gc": [], "gc99": [], "raw": []} for c in inputs}
    mismatches: list[str] = []
    try:
        guestcard = Guestcard(dataset["url"], context.servers.redis_url)
        headers = {"Authorization": f"Bearer {org['api_key']}"}
        with running(guestcard, worker=False):
            async with httpx.AsyncClient(base_url=guestcard.base_url, headers=headers, timeout=120) as client:
                for case in inputs:  # warm both sides
                    await _http(client, case, 2)
                for index in range(context.n_rounds):
                    for case in inputs:
                        gc = await _http(client, case, REQUESTS[context.mode])
                        raw, same = await _raw(sessionmaker, principal, case, RAW_REQUESTS[context.mode])
                        if not same:
                            mismatches.append(case["name"])
                        results[case["name"]]["gc"].append(percentile(gc, 50))
                        results[case["name"]]["gc99"].append(percentile(gc, 99))
                        results[case["name"]]["raw"].append(percentile(raw, 50))
                    console.print(
                        f"  round {index + 1}: "
                        + ", ".join(
                            f"{n.split(',')[0]} {r['gc'][-1]:.1f}/{r['raw'][-1]:.0f} ms" for n, r in results.items()
                        )
                    )
    finally:
        await engine.dispose()
    for name, r in results.items():
        gc_stat = Stat.of(r["gc"])
        report.add(
            Metric(
                name=f"{name} p50",
                unit="ms",
                guestcard=gc_stat,
                floor=Stat.of(r["raw"]),
                ratio=ratios(r["gc"], r["raw"]),
                target="< 50 ms over HTTP",
                passed=gc_stat.median < 50,
                note="floor = the same answer from raw rows, no HTTP",
            )
        )
        report.add(Metric(name=f"{name} p99", unit="ms", guestcard=Stat.of(r["gc99"])))
    report.details.update(dataset=dataset["counts"]["main"], requests=REQUESTS[context.mode])
    if mismatches:
        report.status, report.reason = "error", f"rollup and raw answers differ: {sorted(set(mismatches))}"


async def _http(client: httpx.AsyncClient, case: dict[str, Any], count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get(case["path"], params=case["params"])
        response.read()
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {case['path']} → {response.status_code}: {response.text[:300]}")
    return timings


async def _raw(sessionmaker: Any, principal: Any, case: dict[str, Any], count: int) -> tuple[list[float], bool]:
    """The same answer from raw rows (rollups off), timed; and whether it equals the rollup answer."""
    from services.api.metrics import queries
    from services.api.metrics.scope import lead_scope

    start, end = (datetime.fromisoformat(v) for v in case["window"])
    async with sessionmaker() as session:
        scope = await lead_scope(session, principal)
    rolled = queries.Filter(principal.org_id, start, end, scope)
    raw = queries.Filter(principal.org_id, start, end, scope, raw=True)

    async def answer(f: queries.Filter) -> Any:
        async with sessionmaker() as session:
            if case["fn"] == "cohort":
                return await queries.funnel_cohort(session, f, case["group"])
            if case["fn"] == "activity":
                return await queries.funnel_activity(session, f, case["group"])
            if case["fn"] == "attribution":
                return await queries.attribution(session, f)
            if case["fn"] == "response":
                return await queries.response_time(session, f, case["group"])
            return await queries.health(session, f, as_of)

    as_of = queries.floor_minute(datetime.now(UTC))
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        result = await answer(raw)
        timings.append((time.perf_counter() - started) * 1000)
    rolled_answer = await answer(rolled)
    if case["fn"] == "response":
        return timings, _close(rolled_answer, result)
    if case["fn"] == "health":  # the windowed part is the same query on both sides
        opened = ("open_leads", "no_owner", "no_next_action", "overdue_next_action")
        return timings, all(rolled_answer[k] == result[k] for k in opened)
    return timings, result == rolled_answer


def _close(rolled: list[dict[str, Any]], raw: list[dict[str, Any]]) -> bool:
    """Response time: counts and shares equal, median and p90 within 2 % (docs/metrics.md) plus rounding."""
    if [row["key"] for row in rolled] != [row["key"] for row in raw]:
        return False
    for a, b in zip(rolled, raw, strict=True):
        if a["leads"] != b["leads"]:
            return False
        for kind in ("automated", "human", "first"):
            for name, x in a[kind].items():
                y = b[kind][name]
                if name in ("median_seconds", "p90_seconds"):
                    if (x is None) != (y is None) or (x is not None and abs(x - y) > 0.02 * abs(y) + 0.1):
                        return False
                elif x != y:
                    return False
    return True
