"""Settling a batch of sends (services/api/messaging/jobs.py `_finish`): an automated reply's lead is written by set
(`FIRST_REPLY`), a person's message and anything else through `record_response`; both write what speed to lead,
the timeline and the event stream read, the same way."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import services.api.messaging.jobs as jobs
from services.api.messaging.outbox import queue_message
from shared.clock import FakeClock
from shared.models import Lead, LeadEvent, OutboundMessage, StreamEvent
from tests.conftest import OrgFixture
from tests.messaging.conftest import use_twilio
from tests.messaging.fakes import FakeTwilio
from tests.messaging.helpers import setup_org
from tests.signals.helpers import envelope, post_signal


async def _missed_call(client: httpx.AsyncClient, org: OrgFixture, phone: str) -> uuid.UUID:
    signal = envelope(org.org_id, phone=phone, email=None, event="missed_call", channel="phone", message=None)
    return uuid.UUID((await post_signal(client, signal))["lead_id"])


async def _queued(sessionmaker: async_sessionmaker[AsyncSession], lead_id: uuid.UUID) -> list[OutboundMessage]:
    async with sessionmaker() as session:
        found = await session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.lead_id == lead_id,
                OutboundMessage.status == "queued",
                OutboundMessage.user_id.is_(None),  # the renter's, not the staff's new-lead notice
            )
        )
        return list(found)


async def _lead(sessionmaker: async_sessionmaker[AsyncSession], lead_id: uuid.UUID) -> Lead:
    async with sessionmaker() as session:
        return await session.get_one(Lead, lead_id)


async def test_automated_replies_settle_by_set_beside_a_persons_message_each_as_record_response_writes_it(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    job_ctx: dict[str, Any],
    clock: FakeClock,
) -> None:
    await setup_org(client, org)
    await use_twilio(client, org)
    by_set, by_person, both = [await _missed_call(client, org, f"+1206555018{n}") for n in range(3)]
    replies = {lead_id: await _queued(sessionmaker, lead_id) for lead_id in (by_set, by_person, both)}
    assert all(len(queued) == 1 and queued[0].kind == "reply" for queued in replies.values())
    replied_first = await _lead(sessionmaker, by_set)
    # a person writes to two of them; one of those also has its automated reply in the same batch
    clock.advance(seconds=3)
    people = {}
    for lead_id in (by_person, both):
        response = await client.post(
            f"/v1/leads/{lead_id}/messages", json={"channel": "sms", "body": "Hi, this is Sam"}, headers=org.headers
        )
        assert response.status_code == 201, response.text
        people[lead_id] = response.json()["id"]
    clock.advance(seconds=4.6)
    before = {lead_id: await _lead(sessionmaker, lead_id) for lead_id in (by_set, by_person, both)}
    ids = [str(replies[by_set][0].id), people[by_person], str(replies[both][0].id), people[both]]

    assert await jobs.send_messages(job_ctx, ids) == {"sent": 4}

    now = clock.now()
    lead = await _lead(sessionmaker, by_set)  # by set: what `record_response` writes for an automated reply
    assert lead.first_automated_response_at == lead.first_response_at == now
    assert lead.first_response_seconds == int((now - replied_first.created_at).total_seconds()) == 7
    assert lead.first_human_response_at is None and lead.status == before[by_set].status  # no touch: no "contacted"
    assert (lead.version, lead.updated_at) == (before[by_set].version + 1, now)

    lead = await _lead(sessionmaker, by_person)  # a person's message: a touch (contacted), the first response
    assert lead.first_human_response_at == lead.first_response_at == now and lead.status == "contacted"
    assert lead.first_automated_response_at is None and before[by_person].first_response_at is None

    lead = await _lead(sessionmaker, both)  # both in one batch: the one-by-one path, both written
    assert lead.first_human_response_at == lead.first_automated_response_at == now and lead.status == "contacted"
    assert lead.first_response_at == now and lead.first_response_seconds == 7

    async with sessionmaker() as session:
        sent = (
            await session.execute(
                select(LeadEvent.lead_id, LeadEvent.id, LeadEvent.channel, LeadEvent.contact_id).where(
                    LeadEvent.lead_id.in_([by_set, by_person, both]), LeadEvent.type == "message_sent"
                )
            )
        ).all()
        assert sorted(row.lead_id for row in sent) == sorted([by_set, by_person, both, both])
        assert {row.channel for row in sent} == {"sms"}
        assert next(row.contact_id for row in sent if row.lead_id == by_set) == replied_first.contact_id
        streamed = set(
            await session.scalars(select(StreamEvent.source_event_id).where(StreamEvent.type == "message.sent"))
        )
        assert {row.id for row in sent} <= streamed  # every entry published, the set-written ones too

    # a later automated message (a sequence's step) leaves the first response as it was, and is a change of the lead
    clock.advance(minutes=5)
    async with sessionmaker() as session, session.begin():
        step = await queue_message(
            session,
            lead=await session.get_one(Lead, by_set),
            channel="sms",
            template="follow_up",
            kind="proactive",
            reason="sequence step 1",
            rule={"id": "test_sequence", "version": 1},
            idempotency_key=f"seq:{by_set}:1",
            not_before=clock.now(),
        )
    assert await jobs.send_messages(job_ctx, [str(step.id)]) == {"sent": 1}
    later = await _lead(sessionmaker, by_set)
    assert (later.first_response_at, later.first_response_seconds, later.first_automated_response_at) == (now, 7, now)
    assert (later.version, later.updated_at) == (before[by_set].version + 2, clock.now())
