"""process_inbound / sweep_inbound against a real database and a fake API (the handoff's contract only).

The real API is exercised in test_pipeline_e2e.py; here every branch of the handoff is forced.
"""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq import Retry
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake import jobs
from services.intake.cron import sweep_inbound
from services.intake.jobs import process_inbound
from services.intake.pipeline import resolve_property
from services.intake.worker import MAX_TRIES
from shared.config import Settings
from shared.enums import InboundKind
from shared.models import Contact, InboundMessage, Lead, Property
from shared.queue import WAKE_PREFIX, create_queue, intake_wake_key
from shared.schemas.signal import LeadSignal
from tests.conftest import OrgFixture
from tests.corpus.loader import load_corpus
from tests.intake.test_intake_support import post_case, row

CASES = {case.name: case for case in load_corpus()}
GARBAGE = CASES["email/garbage_not_an_email"]
NEWSLETTER = CASES["email/newsletter_list_unsubscribe_bulk"]
INQUIRY = CASES["email/generic_direct_inquiry"]
ALIAS = "leasing@inbound.guestcard.test"


class FakeApi:
    """Answers POST /v1/internal/signals (the worker's batch form: a list) with whatever the test sets;
    records every envelope."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        self.calls: list[dict[str, Any]] = []
        self.outcome = outcome
        self.answer: Callable[[list[dict[str, Any]]], httpx.Response] = self.ok
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self._handle), base_url="http://api.test")

    def _handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/internal/signals"
        envelopes = json.loads(request.content)
        assert isinstance(envelopes, list)
        self.calls.extend(envelopes)
        return self.answer(envelopes)

    def ok(self, envelopes: list[dict[str, Any]]) -> httpx.Response:
        results = [{"inbound_id": item["inbound_id"], "status": 200, "outcome": self.outcome} for item in envelopes]
        return httpx.Response(200, json=results)


@pytest.fixture
async def api(org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]) -> FakeApi:
    """A real contact and lead for the fake to answer with (the inbound row references both)."""
    async with sessionmaker() as session, session.begin():
        contact = Contact(org_id=org.org_id)
        session.add(contact)
        await session.flush()
        lead = Lead(org_id=org.org_id, contact_id=contact.id)
        session.add(lead)
        await session.flush()
    return FakeApi({"contact_id": str(contact.id), "lead_id": str(lead.id), "created": True})


def job_ctx(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], api: FakeApi, **extra: Any
) -> dict[str, Any]:
    return {"settings": settings, "sessionmaker": sessionmaker, "api": api.client, "job_try": 1, **extra}


async def received(client: httpx.AsyncClient, org: OrgFixture, name: str) -> str:
    response = await post_case(client, org, CASES[name])
    assert response.status_code in (200, 202), response.text
    return str(response.headers["x-inbound-id"])


async def test_garbage_is_failed_with_a_reason_and_kept(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    inbound_id = await received(client, org, GARBAGE.name)
    assert await process_inbound(job_ctx(settings, sessionmaker, api), inbound_id) == "failed"
    stored = await row(sessionmaker, inbound_id)
    assert (stored.status, stored.reason) == ("failed", GARBAGE.expected["reason"])
    assert stored.body == GARBAGE.raw.body and stored.attempts == 1 and stored.processed_at is not None
    assert api.calls == []


async def test_non_lead_mail_is_ignored(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    inbound_id = await received(client, org, NEWSLETTER.name)
    assert await process_inbound(job_ctx(settings, sessionmaker, api), inbound_id) == "ignored"
    stored = await row(sessionmaker, inbound_id)
    assert (stored.status, stored.reason) == ("ignored", "newsletter")
    assert api.calls == []


async def test_signal_is_resolved_matched_handed_off_and_recorded(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    prop = await client.post(
        "/v1/properties",
        json={"name": "Main St Lofts", "inbound_alias": ALIAS, "phone_numbers": ["512-555-0100"]},
        headers=org.headers,
    )
    inbound_id = await received(client, org, INQUIRY.name)
    assert await process_inbound(job_ctx(settings, sessionmaker, api), inbound_id) == "processed"

    [envelope] = api.calls
    assert envelope["inbound_id"] == inbound_id and envelope["org_id"] == str(org.org_id)
    assert envelope["signal"]["property"]["property_id"] == prop.json()["id"]
    assert envelope["signal"]["contact"]["email"] == "isabel.ruiz@example.com"
    assert envelope["match"]["verdict"] == "new"
    stored = await row(sessionmaker, inbound_id)
    assert stored.status == "processed" and stored.reason is None
    assert stored.parser == "email.generic" and stored.source == "email"
    assert stored.signal == envelope["signal"] and stored.match == envelope["match"]
    assert str(stored.lead_id) == api.outcome["lead_id"] and str(stored.contact_id) == api.outcome["contact_id"]
    # a second run of the same job (arq may do that) changes nothing and calls nobody
    assert await process_inbound(job_ctx(settings, sessionmaker, api), inbound_id) == "skipped"
    assert len(api.calls) == 1 and (await row(sessionmaker, inbound_id)).attempts == 1


async def test_api_4xx_fails_with_the_problem_detail_and_is_not_retried(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    api.answer = lambda _: httpx.Response(
        422, json={"title": "Request validation failed", "status": 422, "detail": "signal.contact is empty"}
    )
    inbound_id = await received(client, org, INQUIRY.name)
    assert await process_inbound(job_ctx(settings, sessionmaker, api), inbound_id) == "failed"
    stored = await row(sessionmaker, inbound_id)
    assert stored.status == "failed"
    assert stored.reason == "api refused (422): signal.contact is empty"
    assert stored.signal is not None  # what was sent is kept for the person who looks at it


@pytest.mark.parametrize("broken", ["503", "connect"])
async def test_api_down_is_retried_with_backoff_then_failed_after_the_last_try(
    broken: str, client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    def down(_: list[dict[str, Any]]) -> httpx.Response:
        if broken == "connect":
            raise httpx.ConnectError("refused")
        return httpx.Response(503, json={"title": "Service unavailable", "status": 503})

    api.answer = down
    inbound_id = await received(client, org, INQUIRY.name)
    with pytest.raises(Retry) as retry:
        await process_inbound(job_ctx(settings, sessionmaker, api, job_try=3), inbound_id)
    assert retry.value.defer_score == 4000  # 2^(3-1) s
    assert (await row(sessionmaker, inbound_id)).status == "received"
    assert await process_inbound(job_ctx(settings, sessionmaker, api, job_try=MAX_TRIES), inbound_id) == "failed"
    stored = await row(sessionmaker, inbound_id)
    assert stored.status == "failed" and stored.attempts == 2
    assert stored.reason is not None and stored.reason.startswith(f"api unavailable after {MAX_TRIES} tries")


async def test_replay_after_a_fix(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    api.answer = lambda _: httpx.Response(400, json={"detail": "bug in the API"})
    inbound_id = await received(client, org, INQUIRY.name)
    assert await process_inbound(job_ctx(settings, sessionmaker, api), inbound_id) == "failed"

    agent = await client.post("/v1/api-keys", json={"name": "agent", "role": "agent"}, headers=org.headers)
    agent_headers = {"Authorization": f"Bearer {agent.json()['key']}"}
    assert (await client.post(f"/v1/inbound/{inbound_id}/replay", headers=agent_headers)).status_code == 403

    api.answer = api.ok  # the fix
    replayed = await client.post(f"/v1/inbound/{inbound_id}/replay", headers=org.headers)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["status"] == "received"
    assert replayed.json()["job_id"].startswith(f"inbound:{inbound_id}:replay:")
    detail = (await client.get(f"/v1/inbound/{inbound_id}", headers=org.headers)).json()
    assert (detail["status"], detail["reason"]) == ("received", None)

    assert await process_inbound(job_ctx(settings, sessionmaker, api), inbound_id) == "processed"
    stored = await row(sessionmaker, inbound_id)
    assert stored.status == "processed" and stored.attempts == 2
    again = await client.post(f"/v1/inbound/{inbound_id}/replay", headers=org.headers)
    assert again.status_code == 409


class FakeRedis:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple[str, tuple[Any, ...]]] = {}

    async def enqueue_job(self, function: str, *args: Any, _job_id: str) -> object | None:
        if _job_id in self.jobs:
            return None
        self.jobs[_job_id] = (function, args)
        return object()


async def test_sweep_requeues_only_rows_left_received_past_the_grace_period(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    stuck = await received(client, org, INQUIRY.name)
    fresh = await received(client, org, NEWSLETTER.name)
    done = await received(client, org, GARBAGE.name)
    await process_inbound(job_ctx(settings, sessionmaker, api, intake_batch=1), done)  # that row alone
    old = datetime.now(UTC) - timedelta(seconds=settings.inbound_sweep_after_seconds + 5)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(InboundMessage)
            .where(InboundMessage.id.in_([uuid.UUID(stuck), uuid.UUID(done)]))
            .values(received_at=old, updated_at=old)
        )
    redis = FakeRedis()
    ctx = job_ctx(settings, sessionmaker, api, redis=redis)
    await sweep_inbound(ctx)
    assert redis.jobs[f"inbound:{stuck}:sweep:0"] == ("process_inbound", (stuck,))
    assert not any(fresh in job_id or done in job_id for job_id in redis.jobs)
    await sweep_inbound(ctx)  # same attempts: the same job id, deduplicated by arq
    assert len([job for job in redis.jobs if stuck in job]) == 1


async def test_ops_list_filters_and_pages_newest_first(
    client: httpx.AsyncClient,
    org: OrgFixture,
    other_org: OrgFixture,
    settings: Settings,
    sessionmaker: Any,
    api: FakeApi,
) -> None:
    ids = [await received(client, org, name) for name in (GARBAGE.name, NEWSLETTER.name, INQUIRY.name)]
    await received(client, other_org, INQUIRY.name)
    for inbound_id in ids[:2]:
        await process_inbound(job_ctx(settings, sessionmaker, api), inbound_id)

    page = (await client.get("/v1/inbound", params={"limit": 2}, headers=org.headers)).json()
    assert [item["id"] for item in page["items"]] == [ids[2], ids[1]]
    assert "body" not in page["items"][0] and page["items"][0]["body_size"] > 0
    rest = (
        await client.get("/v1/inbound", params={"limit": 2, "cursor": page["next_cursor"]}, headers=org.headers)
    ).json()
    assert [item["id"] for item in rest["items"]] == [ids[0]] and rest["next_cursor"] is None

    async def only(**params: Any) -> list[str]:
        response = await client.get("/v1/inbound", params=params, headers=org.headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await only(status="failed") == [ids[0]]
    assert await only(status="ignored", kind="email") == [ids[1]]
    assert await only(kind="twilio/sms") == []
    assert await only(received_from=(datetime.now(UTC) + timedelta(minutes=1)).isoformat()) == []
    assert len(await only(received_to=(datetime.now(UTC) + timedelta(minutes=1)).isoformat())) == 3
    assert (await client.get("/v1/inbound", params={"status": "bogus"}, headers=org.headers)).status_code == 422
    assert (await client.get("/v1/inbound", params={"cursor": "!!"}, headers=org.headers)).status_code == 422

    detail = (await client.get(f"/v1/inbound/{ids[1]}", headers=org.headers)).json()
    assert detail["status"] == "ignored" and detail["reason"] == "newsletter"
    assert "body" not in detail and detail["body_size"] == len(NEWSLETTER.raw.body)
    assert isinstance(detail["headers"], dict) and detail["attempts"] == 1
    assert (await client.get(f"/v1/inbound/{ids[1]}", headers=other_org.headers)).status_code == 404


def test_resolve_property_order_and_archived() -> None:
    org_id = uuid.uuid4()

    def prop(name: str, **values: Any) -> Property:
        return Property(
            id=uuid.uuid4(),
            org_id=org_id,
            name=name,
            phone_numbers=values.pop("phones", []),
            listing_ids=values.pop("listings", []),
            is_archived=values.pop("archived", False),
            **values,
        )

    by_listing = prop("Oak", listings=["ZL-1"])
    by_phone = prop("Elm", phones=["+15125550100"])
    by_alias = prop("Ash", inbound_alias="ash@leads.test")
    archived = prop("Pine", listings=["ZL-9"], archived=True)
    props = [by_listing, by_phone, by_alias, archived]

    def signal(**hint: Any) -> LeadSignal:
        return LeadSignal.model_validate(
            {
                "event": "inquiry",
                "channel": "email",
                "occurred_at": "2025-09-20T15:00:00Z",
                "contact": {},
                "source": {"source": "email"},
                "property": hint,
            }
        )

    assert resolve_property(signal(listing_id="ZL-1", tracking_number="+15125550100"), props) == by_listing.id
    assert resolve_property(signal(tracking_number="+15125550100", name="Oak"), props) == by_phone.id
    assert resolve_property(signal(inbound_alias="ASH@leads.test"), props) == by_alias.id
    assert resolve_property(signal(name=" elm "), props) == by_phone.id
    assert resolve_property(signal(listing_id="ZL-9"), props) is None
    assert resolve_property(signal(listing_id="nope", name="Nope"), props) is None
    assert InboundKind.email.value == "email"


async def test_one_job_claims_the_organizations_received_rows_and_hands_them_off_as_one_batch(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    first = await received(client, org, INQUIRY.name)
    others = [await received(client, org, NEWSLETTER.name), await received(client, org, GARBAGE.name)]
    requests: list[int] = []
    answer = api.answer

    def counted(envelopes: list[dict[str, Any]]) -> httpx.Response:
        requests.append(len(envelopes))
        return answer(envelopes)

    api.answer = counted
    assert await process_inbound(job_ctx(settings, sessionmaker, api), first) == "processed"
    assert requests == [1]  # the one signal among them, in one request; the other two ended at the parse
    assert {(await row(sessionmaker, other)).status for other in others} == {"ignored", "failed"}
    for other in others:  # their own jobs find nothing left to do
        assert await process_inbound(job_ctx(settings, sessionmaker, api), other) == "skipped"


async def test_a_job_whose_row_a_batch_of_this_worker_holds_skips_without_a_query(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    """One worker process, two jobs: while the first job's batch holds both rows, the second row's own job
    skips from the process's memory (no statement at all); once the batch is done the set is empty again."""
    first = await received(client, org, INQUIRY.name)
    second = await received(client, org, NEWSLETTER.name)
    statements: list[str] = []
    engine = sessionmaker.kw["bind"].sync_engine

    def count(*args: Any) -> None:
        statements.append(args[2])

    ctx = job_ctx(settings, sessionmaker, api, claimed_rows=set())
    seen: dict[str, Any] = {}

    async def during_hand_off(request: httpx.Request) -> httpx.Response:
        seen["held"] = set(ctx["claimed_rows"])
        event.listen(engine, "before_cursor_execute", count)
        try:
            seen["second"] = await process_inbound(ctx, second)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return api.ok(json.loads(request.content))

    ctx["api"] = httpx.AsyncClient(transport=httpx.MockTransport(during_hand_off), base_url="http://api.test")
    assert await process_inbound(ctx, first) == "processed"
    assert seen == {"held": {uuid.UUID(first), uuid.UUID(second)}, "second": "skipped"}
    assert statements == []
    assert ctx["claimed_rows"] == set()
    assert (await row(sessionmaker, second)).status == "ignored"  # the batch finished it


async def test_jobs_of_one_organization_take_turns_and_other_organizations_do_not_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At most ORG_HANDOFFS_IN_FLIGHT batches of one organization at once (the API applies them one at a time
    anyway); another organization's job is not held behind them; a gate lives only while it is used."""
    ctx: dict[str, Any] = {"org_gates": weakref.WeakValueDictionary(), "handoff_gate": asyncio.Semaphore(8)}
    busy: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}
    release = asyncio.Event()
    org_of: dict[str, str] = {}

    async def fake_process(_: dict[str, Any], inbound_id: str) -> str:
        org = org_of[inbound_id]
        busy[org] += 1
        peak[org] = max(peak[org], busy[org])
        await release.wait()
        busy[org] -= 1
        return "processed"

    monkeypatch.setattr(jobs, "_process", fake_process)
    runs = []
    for org in ["a"] * 5 + ["b"]:
        inbound_id = str(uuid.uuid4())
        org_of[inbound_id] = org
        runs.append(asyncio.create_task(process_inbound(ctx, inbound_id, f"org-{org}")))
    for _ in range(20):
        await asyncio.sleep(0)
    assert busy == {"a": jobs.ORG_HANDOFFS_IN_FLIGHT, "b": 1}
    release.set()
    assert await asyncio.gather(*runs) == ["processed"] * 6
    assert peak == {"a": jobs.ORG_HANDOFFS_IN_FLIGHT, "b": 1}
    gc.collect()
    assert dict(ctx["org_gates"]) == {}


async def test_a_drain_takes_the_organizations_rows_batch_after_batch_and_hands_over_when_long(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: Any,
    api: FakeApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [await received(client, org, name) for name in (INQUIRY.name, NEWSLETTER.name, GARBAGE.name)]
    assert settings.redis_url
    queue = await create_queue(settings.redis_url)
    key = intake_wake_key(org.org_id)
    try:
        monkeypatch.setattr(jobs, "MAX_DRAIN_BATCHES", 2)
        ctx = job_ctx(settings, sessionmaker, api, redis=queue, intake_batch=1)
        generation = int(await queue.get(WAKE_PREFIX + key) or 0)
        assert await jobs.drain_inbound(ctx, str(org.org_id)) == 2  # two batches of one, then it hands over
        assert int(await queue.get(WAKE_PREFIX + key)) == generation + 2  # moved on before each batch's read
        statuses = [(await row(sessionmaker, inbound_id)).status for inbound_id in ids]
        assert statuses.count("received") == 1
        queued = [item.decode() for item in await queue.zrange(settings.queue_name, 0, -1)]
        assert f"{settings.queue_name}:{key}:{generation + 2}" in queued  # the next drain, woken by this one

        assert await jobs.drain_inbound(ctx, str(org.org_id)) == 1  # the rest; a short batch ends it
        assert {(await row(sessionmaker, inbound_id)).status for inbound_id in ids} == {
            "processed",
            "ignored",
            "failed",
        }
        assert await jobs.drain_inbound(ctx, str(org.org_id)) == 0
    finally:
        await queue.aclose()


async def test_a_drain_started_beside_a_running_one_asks_it_for_one_more_batch_and_ends(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    """One drain of an organization runs per process. A second drain job (a wake after the first moved the
    generation on) does not run beside it: the running drain reads once more even though its batch came back
    short, which takes the second job's delivery, and the second job ends once that batch has begun."""
    first = await received(client, org, INQUIRY.name)
    assert settings.redis_url
    queue = await create_queue(settings.redis_url)
    key = intake_wake_key(org.org_id)
    in_hand_off, go_on = asyncio.Event(), asyncio.Event()
    batches: list[list[str]] = []

    async def hand_off(request: httpx.Request) -> httpx.Response:
        envelopes = json.loads(request.content)
        batches.append([item["inbound_id"] for item in envelopes])
        in_hand_off.set()
        await go_on.wait()
        return api.ok(envelopes)

    try:
        ctx = job_ctx(settings, sessionmaker, api, redis=queue, intake_batch=5)
        ctx["api"] = httpx.AsyncClient(transport=httpx.MockTransport(hand_off), base_url="http://api.test")
        generation = int(await queue.get(WAKE_PREFIX + key) or 0)
        running = asyncio.create_task(jobs.drain_inbound(ctx, str(org.org_id)))
        await asyncio.wait_for(in_hand_off.wait(), 10)
        second = await received(client, org, "email/padmapper_lead")  # committed now, after the first read
        asker = asyncio.create_task(jobs.drain_inbound(ctx, str(org.org_id)))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not asker.done()  # it waits for the running drain's next batch, not for the organization's turn
        go_on.set()
        assert await asyncio.wait_for(asker, 10) == 0
        assert await asyncio.wait_for(running, 10) == 2  # one more batch although the first was short
        assert batches == [[first], [second]]
        assert (await row(sessionmaker, second)).status == "processed"
        assert int(await queue.get(WAKE_PREFIX + key)) == generation + 2  # before each of its two reads
        assert ctx["drains"] == {}
        assert await jobs.drain_inbound(ctx, str(org.org_id)) == 0  # alone again: it runs itself
    finally:
        await queue.aclose()


async def test_a_batch_read_ahead_is_given_back_when_the_hand_off_before_it_fails(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    """A full read has the next batch read while it is handed off. When that hand-off finds the API away (a
    retry of the drain), the batch read ahead goes back to `received` at once, unleased, not left for the
    lease to run out; nothing stays held in the process."""
    ids = [await received(client, org, name) for name in (INQUIRY.name, "email/padmapper_lead")]
    assert settings.redis_url
    queue = await create_queue(settings.redis_url)
    posted: list[list[str]] = []

    async def away(request: httpx.Request) -> httpx.Response:
        posted.append([item["inbound_id"] for item in json.loads(request.content)])
        await asyncio.sleep(0.2)  # the read ahead finishes meanwhile
        return httpx.Response(503)

    try:
        ctx = job_ctx(settings, sessionmaker, api, redis=queue, intake_batch=1, claimed_rows=set())
        ctx["api"] = httpx.AsyncClient(transport=httpx.MockTransport(away), base_url="http://api.test")
        with pytest.raises(Retry):
            await jobs.drain_inbound(ctx, str(org.org_id))
        assert posted == [[ids[0]]]  # only the first batch was handed off
        rows = [await row(sessionmaker, inbound_id) for inbound_id in ids]
        assert [item.status for item in rows] == ["received", "received"]
        assert [item.claimed_until for item in rows] == [None, None]  # both claimable again at once
        assert rows[1].attempts == 1  # the second one was read ahead (claimed), then given back
        assert ctx["claimed_rows"] == set() and ctx["drains"] == {}
    finally:
        await queue.aclose()


async def test_a_batchs_outcomes_are_written_while_the_next_batch_is_handed_off(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: Any,
    api: FakeApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under a backlog the API's part is the organization's bottleneck: the next batch goes to it while the
    worker writes the previous batch's outcomes, not after. Every outcome is written before the drain ends."""
    ids = [await received(client, org, name) for name in (INQUIRY.name, "email/padmapper_lead")]
    assert settings.redis_url
    queue = await create_queue(settings.redis_url)
    writing_first, first_may_finish = asyncio.Event(), asyncio.Event()
    posted: list[list[str]] = []
    finish = jobs.pipeline.finish

    async def slow_first_finish(session: AsyncSession, outcomes: list[dict[str, Any]]) -> None:
        if any(str(values["row_id"]) == ids[0] for values in outcomes):
            writing_first.set()
            await first_may_finish.wait()
        await finish(session, outcomes)

    async def hand_off(request: httpx.Request) -> httpx.Response:
        envelopes = json.loads(request.content)
        posted.append([item["inbound_id"] for item in envelopes])
        if len(posted) == 2:  # the second batch reached the API while the first's outcomes are being written
            assert writing_first.is_set() and not first_may_finish.is_set()
            assert (await row(sessionmaker, ids[0])).status == "received"
            first_may_finish.set()
        return api.ok(envelopes)

    monkeypatch.setattr(jobs.pipeline, "finish", slow_first_finish)
    try:
        ctx = job_ctx(settings, sessionmaker, api, redis=queue, intake_batch=1, claimed_rows=set())
        ctx["api"] = httpx.AsyncClient(transport=httpx.MockTransport(hand_off), base_url="http://api.test")
        assert await asyncio.wait_for(jobs.drain_inbound(ctx, str(org.org_id)), 20) == 2
        assert posted == [[ids[0]], [ids[1]]]
        assert [(await row(sessionmaker, inbound_id)).status for inbound_id in ids] == ["processed", "processed"]
        assert ctx["claimed_rows"] == set() and ctx["drains"] == {}
    finally:
        await queue.aclose()


async def test_no_batch_is_read_ahead_while_every_hand_off_slot_of_the_process_is_taken(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: Any, api: FakeApi
) -> None:
    """Many organizations at once take every hand-off slot: a batch read ahead would only hold its rows,
    leased, while it waited for a slot. The drain then reads after its hand-off, as without a backlog."""
    ids = [await received(client, org, name) for name in (INQUIRY.name, "email/padmapper_lead")]
    assert settings.redis_url
    queue = await create_queue(settings.redis_url)
    gate = asyncio.Semaphore(1)
    try:
        ctx = job_ctx(settings, sessionmaker, api, redis=queue, intake_batch=1, handoff_gate=gate)
        await gate.acquire()  # another organization's hand-off holds the only slot
        drain = asyncio.create_task(jobs.drain_inbound(ctx, str(org.org_id)))
        for _ in range(50):  # the first batch is claimed, then waits for the slot
            await asyncio.sleep(0.02)
            if (await row(sessionmaker, ids[0])).attempts:
                break
        await asyncio.sleep(0.2)
        assert [(await row(sessionmaker, inbound_id)).attempts for inbound_id in ids] == [1, 0]  # none read ahead
        gate.release()
        assert await asyncio.wait_for(drain, 10) == 2
        assert [(await row(sessionmaker, inbound_id)).status for inbound_id in ids] == ["processed", "processed"]
    finally:
        await queue.aclose()
