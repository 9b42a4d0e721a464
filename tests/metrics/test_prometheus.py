"""`/metrics` is Prometheus text that prometheus-client's own parser reads, with bounded labels."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.intake.worker import build_worker
from shared import telemetry
from shared.queue import create_queue
from tests.conftest import OrgFixture

GRAFANA = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


async def test_metrics_parse_and_carry_no_org_ids(client: httpx.AsyncClient, org: OrgFixture, settings: Any) -> None:
    await client.get("/v1/metrics/funnel", headers=org.headers)
    await client.get(f"/v1/leads/{org.org_id}", headers=org.headers)  # a 404 on a templated route
    queue = await create_queue(settings.redis_url)
    await telemetry.count_outbound(queue, settings.queue_name, "sms", "sent")
    worker = build_worker(settings, burst=True, cron_jobs=[])
    await queue.enqueue_job("heartbeat", _queue_name=settings.queue_name)
    await worker.async_run()
    await worker.close()

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    for name in (
        "guestcard_http_request_duration_seconds",
        "guestcard_queue_depth",
        "guestcard_queue_lag_seconds",
        "guestcard_inbound_backlog",
        "guestcard_inbound_recent",
        "guestcard_worker_jobs",
        "guestcard_outbound",
    ):
        assert name in families, name
    routes = {s.labels.get("route") for s in families["guestcard_http_request_duration_seconds"].samples}
    assert "/v1/metrics/funnel" in routes and "/v1/leads/{lead_id}" in routes
    jobs = {
        (s.labels["function"], s.labels["outcome"]): s.value
        for s in families["guestcard_worker_jobs"].samples
        if s.name.endswith("_total")
    }
    assert jobs[("heartbeat", "success")] >= 1
    assert str(org.org_id) not in response.text
    # the shipped Grafana dashboard reads only series this endpoint exports
    dashboard = GRAFANA.read_text()
    json.loads(dashboard)
    exported = {s.name for family in families.values() for s in family.samples}
    for name in set(re.findall(r"guestcard_[a-z_]+", dashboard)) - {"guestcard_ops"}:
        assert name in exported or name in families, name
    await queue.aclose()
