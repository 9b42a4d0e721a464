"""End to end on real parts: HTTP intake → PostgreSQL → Redis → burst arq worker → POST /v1/internal/signals → DB.

The worker gets the test app as its API (`ctx["api"]`, service token). Waiting is done by running burst
workers to completion (they return when the queue is empty), never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from arq.connections import create_pool
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import services.api.intake.service as intake_service
from services.intake.cron import sweep_inbound
from services.intake.worker import build_worker
from shared.config import Settings
from shared.enums import InboundKind
from shared.models import InboundMessage, LeadEvent
from shared.queue import redis_settings, serialize_job
from tests.conftest import OrgFixture
from tests.corpus.loader import corpus_properties, load_corpus, subset_match
from tests.intake.test_intake_support import PUBLIC_URL, SERVICE_TOKEN, intake_path, post_case, rows_for, set_secrets

CASES = load_corpus()
OUTCOME_STATUS = {"signal": "processed", "ignored": "ignored", "failed": "failed"}


@pytest.fixture
async def service_api(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """What the worker's ctx["api"] is in production: the API with the service token."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=PUBLIC_URL,
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    ) as api:
        yield api


async def run_burst_worker(settings: Settings, api: Any, **overrides: Any) -> Any:
    worker = build_worker(
        settings, ctx={"api": api, "owns_api": False}, burst=True, cron_jobs=[], poll_delay=0.01, **overrides
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()
    return worker


async def touches(sessionmaker: async_sessionmaker[AsyncSession], inbound_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Renter touches on lead timelines per inbound id: exactly one each means applied exactly once."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(LeadEvent.inbound_id, func.count())
                .where(LeadEvent.inbound_id.in_(inbound_ids), LeadEvent.actor_type == "renter")
                .group_by(LeadEvent.inbound_id)
            )
        ).all()
    return {inbound_id: count for inbound_id, count in rows}


async def test_whole_corpus_through_endpoint_worker_and_api(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await set_secrets(client, org)
    property_names: dict[uuid.UUID, str] = {}
    for body in corpus_properties():
        created = await client.post("/v1/properties", json=body, headers=org.headers)
        assert created.status_code == 201, created.text
        property_names[uuid.UUID(created.json()["id"])] = body["name"]
    by_case: dict[str, uuid.UUID] = {}
    for case in CASES:
        # Mailgun is re-signed at "now" (only timestamp/token/signature change); the rest signs as sent
        monkeypatch.setattr(intake_service, "now", time.time)
        response = await post_case(client, org, case)
        assert response.status_code in (200, 202), f"{case}: {response.status_code} {response.text}"
        by_case[case.name] = uuid.UUID(response.headers["x-inbound-id"])
    assert len(set(by_case.values())) == len(CASES), "two corpus cases share a delivery key"
    # the parsers' reference time is the reception time: give each row the corpus's (jobs are still queued)
    async with sessionmaker() as session, session.begin():
        for case in CASES:
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == by_case[case.name])
                .values(received_at=case.raw.received_at)
            )

    started = time.perf_counter()
    await run_burst_worker(settings, service_api)
    elapsed = time.perf_counter() - started

    rows = {row.id: row for row in await rows_for(sessionmaker, org)}
    problems: list[str] = []
    for case in CASES:
        row = rows[by_case[case.name]]
        expected = case.expected
        want = OUTCOME_STATUS[expected["outcome"]]
        if row.status != want:
            problems.append(f"{case}: status {row.status} ({row.reason}), expected {want}")
            continue
        if expected["outcome"] != "signal" and "reason" in expected and row.reason != expected["reason"]:
            problems.append(f"{case}: reason {row.reason!r}, expected {expected['reason']!r}")
        if expected.get("parser") and row.parser != expected["parser"]:
            problems.append(f"{case}: parser {row.parser}, expected {expected['parser']}")
        if "property_name" in expected:
            resolved = property_names.get(row.property_id) if row.property_id else None
            if resolved != expected["property_name"]:
                problems.append(f"{case}: property {resolved!r}, expected {expected['property_name']!r}")
        if expected["outcome"] == "signal":
            problems.extend(f"{case}: {p}" for p in subset_match(expected.get("signal", {}), row.signal))
            keyword = (row.signal or {}).get("event") in ("opt_out", "opt_in")  # a stranger's STOP makes no lead
            if (row.lead_id is None or row.contact_id is None or row.match is None) and not keyword:
                problems.append(f"{case}: processed without lead/contact/match")
                continue
            if "lead" in expected or "property_name" in expected:
                # what an agent sees: the lead through the API, property included
                lead = (await client.get(f"/v1/leads/{row.lead_id}", headers=org.headers)).json()
                problems.extend(f"{case}: lead {p}" for p in subset_match(expected.get("lead", {}), lead))
                lead_property = property_names.get(uuid.UUID(lead["property_id"])) if lead["property_id"] else None
                if "property_name" in expected and lead_property != expected["property_name"]:
                    problems.append(f"{case}: lead property {lead_property!r}, expected {expected['property_name']!r}")
        elif row.lead_id is not None or row.contact_id is not None:
            problems.append(f"{case}: {row.status} but linked to a lead or contact")
    assert not problems, "\n".join(problems)
    processed = [row.id for row in rows.values() if row.status == "processed"]
    assert set((await touches(sessionmaker, processed)).values()) == {1}
    assert all(row.attempts == 1 for row in rows.values())
    print(f"\ncorpus: {len(CASES)} deliveries processed by one burst worker in {elapsed:.2f}s")


async def test_ops_view_after_processing(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
) -> None:
    case = next(c for c in CASES if c.name == "email/generic_direct_inquiry")
    inbound_id = (await post_case(client, org, case)).headers["x-inbound-id"]
    await run_burst_worker(settings, service_api)
    detail = (await client.get(f"/v1/inbound/{inbound_id}", headers=org.headers)).json()
    assert detail["status"] == "processed" and detail["parser"] == "email.generic"
    assert detail["signal"]["contact"]["email"] == "isabel.ruiz@example.com"
    assert detail["match"]["verdict"] == "new"
    lead = await client.get(f"/v1/leads/{detail['lead_id']}", headers=org.headers)
    assert lead.status_code == 200, lead.text
    assert lead.json()["contact_id"] == detail["contact_id"]


class KillAfter:
    """The worker's API client; after `limit` handoffs it kills the worker — in the worst spot for the
    handoff that triggers it: the API has applied the signal, the row is not yet marked processed."""

    def __init__(self, real: httpx.AsyncClient, org_id: uuid.UUID, limit: int) -> None:
        self.real, self.org_id, self.limit = real, str(org_id), limit
        self.handoffs = 0
        self.worker: Any = None

    async def post(self, url: str, json: list[dict[str, Any]]) -> httpx.Response:
        response = await self.real.post(url, json=json)  # the worker's batch form: a list of envelopes
        if any(envelope["org_id"] == self.org_id for envelope in json):
            self.handoffs += 1
            if self.handoffs >= self.limit:
                self.kill()
                raise asyncio.CancelledError
        return response

    def kill(self) -> None:
        self.worker.main_task.cancel()
        for task in list(self.worker.tasks.values()):
            if task is not asyncio.current_task():
                task.cancel()


async def test_killing_the_worker_mid_batch_loses_nothing(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    batch = 30
    ids: list[uuid.UUID] = []
    for n in range(batch):
        form = {
            "submission_id": f"kill-{uuid.uuid4().hex}",
            "name": f"Renter {n}",
            "email": f"renter{n}@example.com",
            "phone": f"512555{n + 100:04d}",
            "message": "Is a 2 bedroom available?",
        }
        response = await client.post(intake_path(org, InboundKind.web_form), json=form)
        assert response.status_code == 202, response.text
        ids.append(uuid.UUID(response.json()["inbound_id"]))

    # 1. a worker that dies after a few handoffs; retry_jobs=False: its in-flight jobs are gone for good,
    #    as after a crash that also lost Redis state (the hardest case for recovery)
    killer = KillAfter(service_api, org.org_id, limit=5)
    worker = build_worker(
        settings,
        ctx={"api": killer, "owns_api": False, "intake_batch": 4},  # small batches: several handoffs to kill in
        burst=True,
        cron_jobs=[],
        poll_delay=0.01,
        retry_jobs=False,
        max_jobs=4,
    )
    killer.worker = worker
    try:
        with pytest.raises(asyncio.CancelledError):
            await worker.async_run()
    finally:
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        # a killed worker's close() may itself meet the cancellation of jobs still in flight (outbox sends)
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()

    statuses = {row.id: row.status for row in await rows_for(sessionmaker, org)}
    left = [inbound_id for inbound_id in ids if statuses[inbound_id] == "received"]
    assert 0 < len(left) < batch, statuses
    applied_but_unmarked = [i for i, count in (await touches(sessionmaker, left)).items() if count]
    assert applied_but_unmarked, "the kill should have hit after a handoff, before marking"

    # 2. drop whatever is still queued: recovery must not depend on Redis at all
    queue = await create_pool(
        redis_settings(settings.redis_url or ""),
        job_serializer=serialize_job,
        default_queue_name=settings.queue_name,
    )
    try:
        await queue.delete(settings.queue_name)
        sweep_settings = settings.model_copy(update={"inbound_sweep_after_seconds": 0})
        requeued = await sweep_inbound({"settings": sweep_settings, "sessionmaker": sessionmaker, "redis": queue})
    finally:
        await queue.aclose()
    assert requeued >= len(left)

    # 3. a fresh worker finishes the batch
    await run_burst_worker(settings, service_api)
    rows = {row.id: row for row in await rows_for(sessionmaker, org)}
    assert {rows[i].status for i in ids} == {"processed"}
    assert all(rows[i].lead_id is not None for i in ids)
    assert await touches(sessionmaker, ids) == {i: 1 for i in ids}  # one lead event per inbound
    assert len({rows[i].lead_id for i in ids}) == batch
    assert max(rows[i].attempts for i in applied_but_unmarked) == 2


@pytest.mark.parametrize("kind", [InboundKind.email])
async def test_garbage_and_newsletter_end_to_end(
    kind: InboundKind,
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    garbage = await client.post(intake_path(org, kind), content=b"\x00\x01 not mail", headers={"Content-Type": "x/y"})
    newsletter = next(c for c in CASES if c.name == "email/newsletter_list_unsubscribe_bulk")
    ignored = await post_case(client, org, newsletter)
    await run_burst_worker(settings, service_api)
    rows = {str(row.id): row for row in await rows_for(sessionmaker, org)}
    failed = rows[garbage.json()["inbound_id"]]
    assert failed.status == "failed" and failed.reason and failed.body == b"\x00\x01 not mail"
    assert rows[ignored.json()["inbound_id"]].status == "ignored"
    assert isinstance(failed.received_at, datetime)
