"""Merging is reversible to the row: an undo leaves every table exactly as before."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import Contact, ContactIdentity, Lead, LeadEvent
from tests.conftest import OrgFixture
from tests.signals.helpers import deliver, envelope, post_signal

TABLES = ("contacts", "contact_identities", "leads", "lead_events", "tasks", "tours")


async def _rows(sessionmaker: async_sessionmaker[AsyncSession], org_id: uuid.UUID) -> dict[str, list[Any]]:
    async with sessionmaker() as session:
        result = {}
        for table in TABLES:
            rows = await session.execute(
                text(f"SELECT to_jsonb(t)::text FROM {table} t WHERE org_id = :org ORDER BY id"), {"org": org_id}
            )
            result[table] = [row[0] for row in rows]
        return result


async def _two_records_of_one_renter(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    prop = (await client.post("/v1/properties", json={"name": "Birch"}, headers=org.headers)).json()["id"]
    a = await deliver(
        client,
        sessionmaker,
        org.org_id,
        email="jo.park@example.com",
        first_name="Jo",
        last_name=None,
        property_id=uuid.UUID(prop),
    )
    b = await deliver(
        client,
        sessionmaker,
        org.org_id,
        phone="(917) 555-0142",
        first_name="Joanna",
        last_name="Park",
        event="missed_call",
        channel="phone",
        property_id=uuid.UUID(prop),
    )
    await deliver(
        client,
        sessionmaker,
        org.org_id,
        phone="(917) 555-0142",
        event="opt_out",
        channel="sms",
        first_name=None,
        last_name=None,
    )
    await deliver(
        client,
        sessionmaker,
        org.org_id,
        phone="(917) 555-0142",
        first_name="Joanna",
        last_name="Park",
        event="tour_request",
    )
    return a, b, prop


async def test_merge_moves_everything_and_undo_restores_every_row(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    a, b, _ = await _two_records_of_one_renter(client, org, sessionmaker)
    assert a["contact_id"] != b["contact_id"]
    before = await _rows(sessionmaker, org.org_id)

    response = await client.post(
        f"/v1/contacts/{a['contact_id']}/merge",
        json={
            "merge_contact_id": b["contact_id"],
            "field_choices": {"first_name": "merged"},
            "reason": "same renter, ILS + phone",
        },
        headers=org.headers,
    )
    assert response.status_code == 201, response.text
    merge = response.json()
    async with sessionmaker() as session:
        survivor = await session.get_one(Contact, uuid.UUID(a["contact_id"]))
        merged = await session.get_one(Contact, uuid.UUID(b["contact_id"]))
        identities = set(
            (
                await session.execute(
                    select(ContactIdentity.kind, ContactIdentity.value).where(ContactIdentity.contact_id == survivor.id)
                )
            ).all()
        )
        leads = list(await session.scalars(select(Lead).where(Lead.contact_id == survivor.id)))
        merged_events = int(
            await session.scalar(
                select(func.count())
                .select_from(LeadEvent)
                .where(LeadEvent.type == "merged", LeadEvent.org_id == org.org_id)
            )
            or 0
        )
        stray = int(
            await session.scalar(select(func.count()).select_from(LeadEvent).where(LeadEvent.contact_id == merged.id))
            or 0
        )
    assert merged.merged_into_id == survivor.id
    assert (survivor.first_name, survivor.last_name) == ("Joanna", "Park")  # chosen, then blank filled
    assert survivor.sms_consent == "opted_out"  # the opt-out on either side survives
    assert identities == {("email", "jo.park@example.com"), ("phone", "+19175550142")}
    # two open leads for one property fold; the property-less lead stays open
    assert sorted(lead.status for lead in leads) == ["lost", "new", "tour_requested"]
    assert [lead.lost_reason for lead in leads if lead.status == "lost"] == ["duplicate"]
    assert merged_events >= 1
    assert stray == 0

    timeline_after_merge = await client.get(f"/v1/merges/{merge['id']}", headers=org.headers)
    assert timeline_after_merge.json()["reason"] == "same renter, ILS + phone"

    undone = await client.post(f"/v1/merges/{merge['id']}/undo", headers=org.headers)
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_at"] is not None
    assert await _rows(sessionmaker, org.org_id) == before
    assert (await client.post(f"/v1/merges/{merge['id']}/undo", headers=org.headers)).status_code == 409


async def test_signals_after_a_merge_land_on_the_survivor(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    a, b, prop = await _two_records_of_one_renter(client, org, sessionmaker)
    merged = await client.post(
        f"/v1/contacts/{a['contact_id']}/merge", json={"merge_contact_id": b["contact_id"]}, headers=org.headers
    )
    assert merged.status_code == 201
    stale = await post_signal(
        client,
        envelope(
            org.org_id,
            phone="9175550142",
            verdict="existing",
            contact_id=uuid.UUID(b["contact_id"]),
            property_id=uuid.UUID(prop),
        ),
    )
    assert stale["contact_id"] == a["contact_id"]


async def test_review_item_merge_and_its_undo_reopens_the_item(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await deliver(client, sessionmaker, org.org_id, email="rev@example.com")
    await deliver(
        client,
        sessionmaker,
        org.org_id,
        phone="(303) 555-0142",
        channel="phone",
        event="missed_call",
        first_name=None,
        last_name=None,
    )
    conflict = await deliver(client, sessionmaker, org.org_id, email="rev@example.com", phone="303.555.0142")
    item_id = conflict["review_item_id"]
    listed = (await client.get("/v1/review-items", headers=org.headers)).json()
    assert [item["id"] for item in listed["items"]] == [item_id]
    assert listed["counts"]["open"] == 1
    resolved = await client.post(f"/v1/review-items/{item_id}/resolve", json={"action": "merge"}, headers=org.headers)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "merged"
    merge_id = resolved.json()["merge_id"]
    async with sessionmaker() as session:
        live = int(
            await session.scalar(
                select(func.count())
                .select_from(Contact)
                .where(Contact.org_id == org.org_id, Contact.merged_into_id.is_(None))
            )
            or 0
        )
    assert live == 1
    assert (await client.post(f"/v1/merges/{merge_id}/undo", headers=org.headers)).status_code == 200
    item = (await client.get(f"/v1/review-items/{item_id}", headers=org.headers)).json()
    assert item["status"] == "open"


async def test_merge_refuses_bad_requests(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    a = await deliver(client, sessionmaker, org.org_id, email="self@example.com")
    same = await client.post(
        f"/v1/contacts/{a['contact_id']}/merge", json={"merge_contact_id": a["contact_id"]}, headers=org.headers
    )
    assert same.status_code == 422
    foreign = await deliver(client, sessionmaker, other_org.org_id, email="foreign@example.com")
    cross = await client.post(
        f"/v1/contacts/{a['contact_id']}/merge", json={"merge_contact_id": foreign["contact_id"]}, headers=org.headers
    )
    assert cross.status_code == 404
    bad_field = await client.post(
        f"/v1/contacts/{a['contact_id']}/merge",
        json={"merge_contact_id": str(uuid.uuid4()), "field_choices": {"first_name": "both"}},
        headers=org.headers,
    )
    assert bad_field.status_code == 422
    assert bad_field.json()["errors"][0]["field"].startswith("body.field_choices")


async def test_200_concurrent_signals_for_20_renters_across_3_channels(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    renters = [(f"Renter{i}.Person@Example.com", f"(512) 555-{i:04d}") for i in range(20)]

    def channel_body(renter: int, touch: int) -> dict[str, Any]:
        email, phone = renters[renter]
        digits = phone.replace("(", "").replace(")", "").replace(" ", "").replace("-", "")
        match touch % 3:
            case 0:  # website form: email + phone as typed
                return {
                    "email": email.lower(),
                    "phone": phone,
                    "channel": "web",
                    "source": "website",
                    "event": "tour_request",
                }
            case 1:  # ILS email: mixed-case email, dotted phone
                return {
                    "email": email.upper(),
                    "phone": f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
                    "channel": "email",
                    "source": "zillow",
                }
            case _:  # missed call: E.164 only
                return {
                    "phone": f"+1{digits}",
                    "channel": "phone",
                    "source": "phone",
                    "event": "missed_call",
                    "first_name": None,
                    "last_name": None,
                }

    bodies = [channel_body(index % 20, index // 20) for index in range(200)]
    outcomes = await asyncio.gather(*(deliver(client, sessionmaker, org.org_id, **body) for body in bodies))
    by_renter: dict[int, set[str]] = {}
    for index, outcome in enumerate(outcomes):
        by_renter.setdefault(index % 20, set()).add(outcome["contact_id"])
    assert all(len(contacts) == 1 for contacts in by_renter.values())
    async with sessionmaker() as session:
        contacts = int(
            await session.scalar(select(func.count()).select_from(Contact).where(Contact.org_id == org.org_id)) or 0
        )
        touches = int(
            await session.scalar(
                select(func.count())
                .select_from(LeadEvent)
                .where(LeadEvent.org_id == org.org_id, LeadEvent.type.in_(["inquiry", "tour_request", "missed_call"]))
            )
            or 0
        )
        applied = int(
            await session.scalar(text("SELECT count(*) FROM signal_applications WHERE org_id = :o"), {"o": org.org_id})
            or 0
        )
    assert contacts == 20
    assert touches == 200
    assert applied == 200
