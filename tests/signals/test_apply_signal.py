from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import Contact, ContactIdentity, Lead, LeadEvent, ReviewItem, SignalApplication, Task, User
from tests.conftest import OrgFixture
from tests.signals.helpers import SERVICE_HEADERS, envelope, post_signal


async def _count(sessionmaker: async_sessionmaker[AsyncSession], model: type, **where: object) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int(await session.scalar(query) or 0)


async def test_service_token_is_required(client: httpx.AsyncClient, org: OrgFixture) -> None:
    body = envelope(org.org_id, email="a@example.com")
    assert (await client.post("/v1/internal/signals", json=body)).status_code == 401
    assert (await client.post("/v1/internal/signals", json=body, headers=org.headers)).status_code == 401


async def test_new_renter_gets_contact_lead_touch_and_next_action(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    outcome = await post_signal(
        client,
        envelope(org.org_id, email="Dana.Reyes@Example.com", phone="(703) 868-3162", preferences={"bedrooms": 2}),
    )
    assert outcome["created"] is True
    assert outcome["contact_created"] is True
    async with sessionmaker() as session:
        lead = await session.get_one(Lead, uuid.UUID(outcome["lead_id"]))
        contact = await session.get_one(Contact, uuid.UUID(outcome["contact_id"]))
        identities = set(
            (
                await session.execute(
                    select(ContactIdentity.kind, ContactIdentity.value).where(ContactIdentity.contact_id == contact.id)
                )
            ).all()
        )
        types = list(
            await session.scalars(select(LeadEvent.type).where(LeadEvent.lead_id == lead.id).order_by(LeadEvent.type))
        )
    assert identities == {("email", "dana.reyes@example.com"), ("phone", "+17038683162")}
    assert (lead.status, lead.temperature, lead.source, lead.bedrooms) == ("new", "hot", "zillow", 2)
    assert lead.next_action_type == "reply"
    assert lead.next_action_due_at is not None
    # the reply is queued on the timeline too; its follow-up a day later is the automation's sequence
    assert types == ["created", "inquiry", "message_queued", "sequence_started"]


async def test_same_signal_twice_changes_nothing(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    body = envelope(org.org_id, email="twice@example.com")
    first = await post_signal(client, body)
    async with sessionmaker() as session:
        version = (await session.get_one(Lead, uuid.UUID(first["lead_id"]))).version
    second = await post_signal(client, body)
    assert second == first
    assert await _count(sessionmaker, LeadEvent, lead_id=uuid.UUID(first["lead_id"])) == 4  # + reply, follow-up
    async with sessionmaker() as session:
        assert (await session.get_one(Lead, uuid.UUID(first["lead_id"]))).version == version


async def test_fifty_concurrent_signals_for_one_new_renter_make_one_contact_and_one_lead(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    emails = ["race@example.com", "RACE@example.com", " Race@Example.COM "]
    phones = ["(512) 555-0142", "+1 512 555 0142", "512.555.0142", "5125550142"]
    bodies = [
        envelope(
            org.org_id,
            email=emails[index % len(emails)],
            phone=phones[index % len(phones)] if index % 2 else None,
            source="zillow" if index % 3 else "website",
        )
        for index in range(50)
    ]
    outcomes = await asyncio.gather(*(post_signal(client, body) for body in bodies))
    assert len({outcome["contact_id"] for outcome in outcomes}) == 1
    assert len({outcome["lead_id"] for outcome in outcomes}) == 1
    assert sum(outcome["contact_created"] for outcome in outcomes) == 1
    assert sum(outcome["created"] for outcome in outcomes) == 1
    assert await _count(sessionmaker, Contact, org_id=org.org_id) == 1
    assert await _count(sessionmaker, Lead, org_id=org.org_id) == 1
    assert await _count(sessionmaker, LeadEvent, org_id=org.org_id, type="inquiry") == 50
    async with sessionmaker() as session:
        identities = set(
            (
                await session.execute(
                    select(ContactIdentity.kind, ContactIdentity.value).where(ContactIdentity.org_id == org.org_id)
                )
            ).all()
        )
    assert identities == {("email", "race@example.com"), ("phone", "+15125550142")}


async def test_a_blank_never_erases_and_a_new_value_updates(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await post_signal(client, envelope(org.org_id, email="keep@example.com", preferences={"bedrooms": 2, "pets": True}))
    outcome = await post_signal(
        client,
        envelope(org.org_id, email="keep@example.com", first_name=None, preferences={"move_in_date": "2027-01-15"}),
    )
    async with sessionmaker() as session:
        lead = await session.get_one(Lead, uuid.UUID(outcome["lead_id"]))
        contact = await session.get_one(Contact, uuid.UUID(outcome["contact_id"]))
    assert (lead.bedrooms, lead.pets, str(lead.move_in_date)) == (2, True, "2027-01-15")
    assert contact.first_name == "Dana"


async def test_tour_request_moves_forward_and_an_inquiry_never_moves_back(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    outcome = await post_signal(client, envelope(org.org_id, email="tour@example.com", event="tour_request"))
    await post_signal(client, envelope(org.org_id, email="tour@example.com", event="inquiry"))
    async with sessionmaker() as session:
        lead = await session.get_one(Lead, uuid.UUID(outcome["lead_id"]))
        tasks = list(await session.scalars(select(Task).where(Task.lead_id == lead.id)))
    assert lead.status == "tour_requested"
    assert lead.next_action_type == "schedule_tour"  # no time given: a scheduling task (rule tour_request_no_time)
    assert [task.type for task in tasks] == ["tour"]


async def test_missed_call_gets_text_back_and_one_call_task_and_opt_out_suppresses_texts(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    phone = "+17038683162"
    first = await post_signal(
        client,
        envelope(
            org.org_id,
            phone=phone,
            event="missed_call",
            channel="phone",
            source="phone",
            first_name=None,
            last_name=None,
        ),
    )
    await post_signal(
        client,
        envelope(
            org.org_id,
            phone=phone,
            event="missed_call",
            channel="phone",
            source="phone",
            first_name=None,
            last_name=None,
        ),
    )
    async with sessionmaker() as session:
        lead = await session.get_one(Lead, uuid.UUID(first["lead_id"]))
        assert lead.next_action_type == "call"  # the text-back is automated; a person calls back
        call_tasks = list(await session.scalars(select(Task).where(Task.lead_id == lead.id, Task.type == "call")))
    assert len(call_tasks) == 1
    await post_signal(
        client,
        envelope(
            org.org_id,
            phone=phone,
            event="opt_out",
            channel="sms",
            source="sms",
            message="STOP",
            first_name=None,
            last_name=None,
        ),
    )
    async with sessionmaker() as session:
        lead = await session.get_one(Lead, uuid.UUID(first["lead_id"]))
        contact = await session.get_one(Contact, uuid.UUID(first["contact_id"]))
    assert contact.sms_consent == "opted_out"
    assert lead.next_action_type == "call"


async def test_email_and_phone_of_different_contacts_go_to_review_with_reasons(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    by_email = await post_signal(client, envelope(org.org_id, email="ils@example.com", first_name="Sam"))
    by_phone = await post_signal(client, envelope(org.org_id, phone="+12125550142", first_name="Sam", channel="phone"))
    assert by_email["contact_id"] != by_phone["contact_id"]
    outcome = await post_signal(
        client,
        envelope(
            org.org_id,
            email="ils@example.com",
            phone="212-555-0142",
            verdict="review",
            candidates=[
                {"contact_id": by_email["contact_id"], "matched_on": ["email"]},
                {"contact_id": by_phone["contact_id"], "matched_on": ["phone"]},
            ],
            reasons=["conflict: email matches one contact, phone another"],
        ),
    )
    assert outcome["contact_id"] == by_email["contact_id"]
    assert outcome["review_item_id"] is not None
    async with sessionmaker() as session:
        item = await session.get_one(ReviewItem, uuid.UUID(outcome["review_item_id"]))
        match_events = list(
            await session.scalars(
                select(LeadEvent).where(LeadEvent.lead_id == uuid.UUID(outcome["lead_id"]), LeadEvent.type == "match")
            )
        )
    assert set(map(str, item.candidate_contact_ids)) == {by_phone["contact_id"]}
    assert "conflict" in item.reasons[0]
    assert match_events and match_events[0].data["reasons"] == item.reasons


async def test_a_lost_lead_is_reopened_hot_when_the_renter_comes_back(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first = await post_signal(client, envelope(org.org_id, email="back@example.com"))
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Lead)
            .where(Lead.id == uuid.UUID(first["lead_id"]))
            .values(status="lost", temperature="cold", lost_reason="unresponsive", closed_at=func.now())
        )
    again = await post_signal(client, envelope(org.org_id, email="back@example.com"))
    assert again["lead_id"] == first["lead_id"]
    async with sessionmaker() as session:
        lead = await session.get_one(Lead, uuid.UUID(first["lead_id"]))
    assert (lead.status, lead.temperature, lead.lost_reason) == ("new", "hot", None)


async def test_owner_is_assigned_stably_among_active_agents(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session, session.begin():
        agents = [
            User(org_id=org.org_id, email=f"agent{i}@example.com", name=f"Agent {i}", role="agent") for i in range(3)
        ]
        session.add_all(agents)
    outcome = await post_signal(client, envelope(org.org_id, email="owned@example.com"))
    again = await post_signal(client, envelope(org.org_id, email="owned@example.com", property_id=None))
    async with sessionmaker() as session:
        lead = await session.get_one(Lead, uuid.UUID(outcome["lead_id"]))
    assert lead.owner_id in {agent.id for agent in agents}
    assert lead.next_action_owner_id == lead.owner_id
    assert again["lead_id"] == outcome["lead_id"]
    assert await _count(sessionmaker, SignalApplication, org_id=org.org_id) == 2


async def test_unknown_org_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/internal/signals", json=envelope(uuid.uuid4(), email="x@example.com"), headers=SERVICE_HEADERS
    )
    assert response.status_code == 404


async def test_nul_bytes_in_renter_text_are_dropped_not_fatal(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    outcome = await post_signal(
        client, envelope(org.org_id, email="nul@example.com", first_name="Ro\x00sa", message="hi\x00 there")
    )
    async with sessionmaker() as session:
        contact = await session.get_one(Contact, uuid.UUID(outcome["contact_id"]))
    assert contact.first_name == "Rosa"


async def test_what_one_touch_writes_reads_on_the_timeline_in_the_order_it_happened(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    """A new renter's tour request is three entries at one instant (the lead created, the renter's touch, the status
    it moved): newest first, the timeline reads them status, touch, created, every time (ids break the tie)."""
    for attempt in range(5):
        body = envelope(
            org.org_id, email=f"order{attempt}@example.com", event="tour_request", channel="web", source="website",
            message="Can I see it Saturday?",
        )  # fmt: skip
        outcome = await post_signal(client, body)
        response = await client.get(f"/v1/leads/{outcome['lead_id']}/timeline", headers=org.headers)
        assert response.status_code == 200, response.text
        entries = response.json()["items"]
        touch = [entry["type"] for entry in entries if entry["occurred_at"] == entries[-1]["occurred_at"]]
        assert touch == ["status_changed", "tour_request", "created"]
