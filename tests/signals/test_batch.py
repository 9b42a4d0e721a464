"""POST /v1/internal/signals with a list: one transaction, one savepoint per signal, sorted locks (#16)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.messaging.consent import record_consent
from shared.models import Contact, LeadEvent, OutboundMessage
from tests.conftest import OrgFixture
from tests.signals.helpers import SERVICE_HEADERS, envelope


async def post_batch(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = await client.post("/v1/internal/signals", json=bodies, headers=SERVICE_HEADERS)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()
    return results


async def count(sessionmaker: async_sessionmaker[AsyncSession], model: Any, org_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(model.org_id == org_id)) or 0)


async def test_a_bad_signal_fails_alone_and_the_batch_is_idempotent(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    bodies = [
        envelope(org.org_id, email="first.batch@example.com"),
        envelope(uuid.uuid4(), email="nobody@example.com"),  # an organization that does not exist
        envelope(org.org_id, phone="+15125550177", first_name="Sam", last_name="Ode"),
    ]
    results = await post_batch(client, bodies)
    assert [result["status"] for result in results] == [200, 404, 200]
    assert [result["inbound_id"] for result in results] == [body["inbound_id"] for body in bodies]
    assert results[1]["outcome"] is None and results[1]["detail"] == "Organization not found."
    assert results[0]["outcome"]["created"] and results[2]["outcome"]["created"]
    events = await count(sessionmaker, LeadEvent, org.org_id)

    again = await post_batch(client, bodies)  # a redelivered batch: same outcomes, nothing written
    assert [result["outcome"] for result in again] == [result["outcome"] for result in results]
    assert await count(sessionmaker, LeadEvent, org.org_id) == events
    assert await count(sessionmaker, Contact, org.org_id) == 2


async def test_crossing_batches_for_the_same_renters_do_not_deadlock_and_make_one_contact_each(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    renters = [(f"cross{i}@example.com", f"+1512555{i + 300:04d}") for i in range(6)]

    def batch(order: list[int], channel: int) -> list[dict[str, Any]]:
        bodies = []
        for index in order:
            email, phone = renters[index]
            fields = {"email": email, "phone": phone} if channel == 0 else {"phone": phone, "first_name": None}
            bodies.append(envelope(org.org_id, **fields))
        return bodies

    forward, backward = list(range(6)), list(reversed(range(6)))
    batches = [batch(forward, 0), batch(backward, 1), batch(backward, 0), batch(forward, 1)]
    answers = await asyncio.gather(*(post_batch(client, bodies) for bodies in batches))
    assert all(result["status"] == 200 for results in answers for result in results)
    assert await count(sessionmaker, Contact, org.org_id) == 6


async def test_the_single_object_form_still_answers_one_outcome(client: httpx.AsyncClient, org: OrgFixture) -> None:
    body = envelope(org.org_id, email="single.form@example.com")
    response = await client.post("/v1/internal/signals", json=body, headers=SERVICE_HEADERS)
    assert response.status_code == 200 and response.json()["created"] is True
    missing = await client.post(
        "/v1/internal/signals", json=envelope(uuid.uuid4(), email="x@example.com"), headers=SERVICE_HEADERS
    )
    assert missing.status_code == 404


async def test_a_signal_twice_in_one_batch_is_applied_once_and_answers_the_same_outcome(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    twin = envelope(org.org_id, email="twin.batch@example.com")
    other = envelope(org.org_id, email="other.batch@example.com")
    results = await post_batch(client, [twin, other, twin])
    assert [result["status"] for result in results] == [200, 200, 200]
    assert results[0]["outcome"] == results[2]["outcome"] and results[0]["outcome"]["created"]
    assert await count(sessionmaker, Contact, org.org_id) == 2
    events = await count(sessionmaker, LeadEvent, org.org_id)
    again = await post_batch(client, [other, twin])  # outcomes read up front for the whole batch
    assert [result["outcome"] for result in again] == [results[1]["outcome"], results[0]["outcome"]]
    assert await count(sessionmaker, LeadEvent, org.org_id) == events


async def test_a_batch_keeps_opt_outs_recorded_before_it_and_inside_it(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The batch reads its addresses' consent once (services/api/messaging/consent.py): a STOP recorded
    before the batch, or by an earlier signal of the same batch, still keeps texts from that number."""
    before, inside, control = "+15125550181", "+15125550182", "+15125550183"
    async with sessionmaker() as session, session.begin():
        await record_consent(
            session, org.org_id, channel="sms", state="opted_out", source="sms_keyword", address=before
        )
    bodies = [
        envelope(
            org.org_id,
            phone=inside,
            event="opt_out",
            channel="sms",
            source="sms",
            first_name=None,
            last_name=None,
            message="STOP",
        ),
        *(
            envelope(
                org.org_id,
                phone=phone,
                email=f"renter{phone[-3:]}@example.com",
                event="tour_request",
                channel="web",
                source="website",
                message="Can I see it Saturday?",
            )
            for phone in (inside, before, control)
        ),
    ]
    results = await post_batch(client, bodies)
    assert [result["status"] for result in results] == [200] * 4
    async with sessionmaker() as session:
        texts = (
            await session.execute(
                select(OutboundMessage.to_address, OutboundMessage.reason, OutboundMessage.status).where(
                    OutboundMessage.org_id == org.org_id, OutboundMessage.channel == "sms"
                )
            )
        ).all()
    assert {to for to, _, status in texts if status == "queued"} == {control}
    assert sorted((to, reason) for to, reason, status in texts if status == "suppressed") == [
        (before, "opted_out"),
        (inside, "opted_out"),
    ]
