"""`GET /metrics`: Prometheus text (prometheus-client) for operators. No organization ids in any label.

- `guestcard_http_request_duration_seconds{method,route,status}`: a histogram per route *template*
  (observed by the request middleware in this process).
- `guestcard_queue_depth`, `guestcard_queue_lag_seconds`: jobs waiting in the arq queue and how late the
  oldest due one is (read from Redis at scrape).
- `guestcard_inbound_backlog`, `guestcard_inbound_backlog_age_seconds`: deliveries stored but not processed.
- `guestcard_inbound_recent{status}`: deliveries received in the last 15 minutes by status (PostgreSQL).
- `guestcard_worker_jobs_total{function,outcome}`, `guestcard_outbound_total{channel,status}`: counters
  the worker and senders keep in Redis (shared.telemetry); every process adds, the scrape reads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from services.api.deps import StateDep
from shared import clock, telemetry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Histogram(
    "guestcard_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("guestcard_queue_depth", "jobs waiting in the queue", registry=REGISTRY)
QUEUE_LAG = Gauge("guestcard_queue_lag_seconds", "how late the oldest due job is", registry=REGISTRY)
BACKLOG = Gauge("guestcard_inbound_backlog", "deliveries stored and not yet processed", registry=REGISTRY)
BACKLOG_AGE = Gauge(
    "guestcard_inbound_backlog_age_seconds", "age of the oldest unprocessed delivery", registry=REGISTRY
)
RECENT = Gauge("guestcard_inbound_recent", "deliveries received in the last 15 minutes", ["status"], registry=REGISTRY)
STATUSES = ("received", "processed", "ignored", "failed")


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Called by the access-log middleware; `route` is the template (unmatched paths share one label)."""
    REQUESTS.labels(method, route, f"{status // 100}xx").observe(seconds)


class RedisCounters(Collector):
    """Counters kept in Redis by other processes, read at scrape time (values cached by the handler)."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, ...], int] = {}
        self.outbound: dict[tuple[str, ...], int] = {}

    def collect(self) -> Iterable[CounterMetricFamily]:
        jobs = CounterMetricFamily("guestcard_worker_jobs", "worker job outcomes", labels=["function", "outcome"])
        for labels, value in sorted(self.jobs.items()):
            if len(labels) == 2:
                jobs.add_metric(list(labels), value)
        yield jobs
        outbound = CounterMetricFamily(
            "guestcard_outbound", "outbound messages by status", labels=["channel", "status"]
        )
        for labels, value in sorted(self.outbound.items()):
            if len(labels) == 2:
                outbound.add_metric(list(labels), value)
        yield outbound


COUNTERS = RedisCounters()
REGISTRY.register(COUNTERS)
router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(state: StateDep) -> Response:
    """Prometheus exposition format: request latency, queue, intake backlog, worker job outcomes."""
    await _refresh(state)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE)


async def _refresh(state: Any) -> None:
    now = clock.now()
    queue = state.queue
    if queue is not None:
        try:
            name = state.settings.queue_name
            QUEUE_DEPTH.set(await queue.zcard(name))
            oldest = await queue.zrange(name, 0, 0, withscores=True)
            due_ms = oldest[0][1] if oldest else None
            QUEUE_LAG.set(max(0.0, time.time() - due_ms / 1000) if due_ms is not None else 0.0)
            COUNTERS.jobs = await telemetry.read(queue, telemetry.jobs_key(name))
            COUNTERS.outbound = await telemetry.read(queue, telemetry.outbound_key(name))
        except Exception:
            QUEUE_DEPTH.set(float("nan"))
    async with state.engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT count(*), min(received_at) FROM inbound_messages WHERE status = 'received'")
            )
        ).one()
        BACKLOG.set(row[0])
        BACKLOG_AGE.set((now - row[1]).total_seconds() if row[1] is not None else 0)
        # per organization on (org_id, received_at), so the scan stays inside the last 15 minutes
        recent = await connection.execute(
            text(
                "SELECT r.status, count(*) FROM organizations o CROSS JOIN LATERAL ("
                "SELECT status FROM inbound_messages im WHERE im.org_id = o.id AND im.received_at >= :since) r "
                "GROUP BY 1"
            ),
            {"since": now - timedelta(minutes=15)},
        )
        counts = {status: n for status, n in recent}
        for status in STATUSES:
            RECENT.labels(status).set(counts.get(status, 0))
