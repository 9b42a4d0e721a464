"""The outbox's batched send: the messages one transaction queued go as one `send_messages` job, claimed in one
statement, sent side by side and settled in one transaction, with the guarantees of the single send (never
twice, a retry keeps its backoff, a crash between the provider's 2xx and our update resolved by asking)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from arq.constants import job_key_prefix
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import services.api.messaging.jobs as jobs
from services.api.messaging.outbox import enqueue_send
from shared.clock import FakeClock
from shared.models import Lead, LeadEvent, OutboundMessage
from shared.queue import BATCH_MAX, create_queue, enqueue_after_commit, queued_job_id, take_pending_jobs
from tests.conftest import OrgFixture
from tests.messaging.conftest import use_twilio
from tests.messaging.fakes import FakeTwilio
from tests.signals.helpers import envelope, post_signal


async def _agent_sms(client: httpx.AsyncClient, org: OrgFixture, phone: str, text: str) -> str:
    signal = envelope(org.org_id, phone=phone, email=None, event="call", channel="phone")
    lead_id = (await post_signal(client, signal))["lead_id"]
    response = await client.post(
        f"/v1/leads/{lead_id}/messages", json={"channel": "sms", "body": text}, headers=org.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _rows(sessionmaker: async_sessionmaker[AsyncSession], ids: list[str]) -> dict[str, OutboundMessage]:
    async with sessionmaker() as session:
        rows = await session.scalars(select(OutboundMessage).where(OutboundMessage.id.in_([uuid.UUID(i) for i in ids])))
        return {str(row.id): row for row in rows}


async def test_the_sends_of_one_transaction_go_as_one_job_and_a_rolled_back_savepoint_drops_its_own(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ids = [uuid.uuid4() for _ in range(BATCH_MAX + 2)]
    async with sessionmaker() as session:
        enqueue_after_commit(session, "heartbeat", job_id="heartbeat:1")
        for message_id in ids[:-1]:
            enqueue_send(session, message_id)
        kept = len(session.info["guestcard.pending_jobs"])
        enqueue_send(session, ids[-1])  # a signal whose savepoint rolls back drops the requests it added
        del session.info["guestcard.pending_jobs"][kept:]
        jobs_out = take_pending_jobs(session)
    assert [job.function for job in jobs_out] == ["heartbeat", "send_messages", "send_message"]
    batch, alone = jobs_out[1], jobs_out[2]
    assert batch.args == ([str(i) for i in ids[:BATCH_MAX]],) and batch.job_id == f"send_messages:{ids[0]}"
    assert alone.args == (str(ids[BATCH_MAX]),) and alone.job_id == f"send:{ids[BATCH_MAX]}"  # today's single job


async def test_a_batch_is_sent_once_each_and_settled_with_the_timeline_and_first_response(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    job_ctx: dict[str, Any],
    clock: FakeClock,
) -> None:
    await use_twilio(client, org)
    phones = ["+12065550171", "+12065550172", "+12065550173"]
    ids = [await _agent_sms(client, org, phone, f"Hello {n}") for n, phone in enumerate(phones)]
    assert await jobs.send_messages(job_ctx, ids) == {"sent": 3}
    assert await jobs.send_messages(job_ctx, ids) == {"sent": 3}  # arq ran it twice: settled, not resent
    assert twilio.posts == 3 and all(len(twilio.accepted(phone)) == 1 for phone in phones)
    rows = await _rows(sessionmaker, ids)
    assert {row.status for row in rows.values()} == {"sent"}
    assert {row.provider_message_id for row in rows.values()} == {m["sid"] for m in twilio.accepted()}
    async with sessionmaker() as session:
        for row in rows.values():
            lead = await session.get_one(Lead, row.lead_id)
            assert lead.first_human_response_at is not None and lead.status == "contacted"
            sent = await session.scalars(
                select(LeadEvent).where(LeadEvent.lead_id == row.lead_id, LeadEvent.type == "message_sent")
            )
            assert [event.data["status"] for event in sent] == ["sent"]


async def test_a_failure_in_a_batch_hands_that_message_to_its_own_deferred_job(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    job_ctx: dict[str, Any],
    clock: FakeClock,
) -> None:
    await use_twilio(client, org)
    ids = [await _agent_sms(client, org, phone, "Tour at 3") for phone in ("+12065550174", "+12065550175")]
    queue_name = f"guestcard:test:{uuid.uuid4().hex[:8]}"
    settings = job_ctx["settings"].model_copy(update={"queue_name": queue_name})
    queue = await create_queue(settings.redis_url or "")
    try:  # each was queued alone by its request, on the app's queue (no worker runs it): this batch stands in
        twilio.fail_next = [500]  # the first POST: may have been accepted
        before = time.time()
        assert await jobs.send_messages({**job_ctx, "settings": settings, "redis": queue}, ids) == {
            "retry": 1,
            "sent": 1,
        }
        rows = await _rows(sessionmaker, ids)
        [failed] = [i for i in ids if rows[i].status == "sending"]
        assert rows[failed].error_code == "20500"
        # its own job, under the id the sweep would use (so the sweep cannot cut the backoff short), deferred
        assert await queue.exists(job_key_prefix + queued_job_id(queue_name, f"send:{failed}"))
        score = await queue.zscore(queue_name, queued_job_id(queue_name, f"send:{failed}"))
        assert score is not None and score / 1000 >= before + jobs.backoff(1) - 1
        # that job (job_try 1, after the batch's try): asks Twilio first, finds nothing, sends once
        assert await jobs.send_message(job_ctx, failed, 1) == "sent"
        assert (twilio.posts, twilio.lists) == (3, 1)
    finally:
        await queue.delete(queue_name, *(job_key_prefix + queued_job_id(queue_name, f"send:{i}") for i in ids))
        await queue.aclose()


async def test_killing_the_worker_after_a_batch_was_accepted_does_not_send_twice(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    job_ctx: dict[str, Any],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await use_twilio(client, org)
    phones = ["+12065550176", "+12065550177"]
    ids = [await _agent_sms(client, org, phone, "See you at 3") for phone in phones]
    real_finish = jobs._finish

    async def killed(*args: Any, **kwargs: Any) -> dict[uuid.UUID, str]:
        raise asyncio.CancelledError  # the worker dies: Twilio said 201 twice, our rows still say `sending`

    monkeypatch.setattr(jobs, "_finish", killed)
    with pytest.raises(asyncio.CancelledError):
        await jobs.send_messages(job_ctx, ids)
    monkeypatch.setattr(jobs, "_finish", real_finish)
    assert twilio.posts == 2
    assert {row.status for row in (await _rows(sessionmaker, ids)).values()} == {"sending"}
    # arq runs the job again (or the sweep's jobs run): each row is looked up at Twilio, found, not resent
    assert await jobs.send_messages({**job_ctx, "job_try": 2}, ids) == {"sent": 2}
    assert (twilio.posts, twilio.lists) == (2, 2)
    rows = await _rows(sessionmaker, ids)
    for message_id, phone in zip(ids, phones, strict=True):
        assert rows[message_id].provider_message_id == twilio.accepted(phone)[0]["sid"]


async def test_a_reply_settles_while_another_transaction_writes_a_row_that_points_at_its_lead(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    job_ctx: dict[str, Any],
    clock: FakeClock,
) -> None:
    """Under a burst the intake writes each inbound row's outcome (its lead_id: a foreign key, so PostgreSQL
    takes FOR KEY SHARE on the lead) while that lead's first reply settles. The settle locks the lead FOR NO
    KEY UPDATE, which does not wait for that share lock; with FOR UPDATE the two waited on each other's leads
    and deadlocked, and the renter's reply waited for the cron."""
    await use_twilio(client, org)
    message_id = await _agent_sms(client, org, "+12065550178", "See you Saturday")
    message = (await _rows(sessionmaker, [message_id]))[message_id]
    assert message.lead_id is not None and message.contact_id is not None
    async with sessionmaker() as other, other.begin():
        other.add(
            LeadEvent(
                org_id=org.org_id,
                lead_id=message.lead_id,
                contact_id=message.contact_id,
                type="note",
                occurred_at=clock.now(),
                actor_type="system",
                data={},
            )
        )
        await other.flush()  # not committed: the foreign-key check's share lock on the lead stays held
        assert await asyncio.wait_for(jobs.send_messages(job_ctx, [message_id]), 10) == {"sent": 1}
    async with sessionmaker() as session:
        lead = await session.get_one(Lead, message.lead_id)
        assert lead.first_human_response_at is not None
