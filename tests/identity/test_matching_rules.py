"""Each conflict kind and each blocklist kind, through the worker's matching and the API's application."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import Contact, ContactIdentity, LeadEvent, ReviewItem
from tests.conftest import OrgFixture
from tests.signals.helpers import deliver


async def _contacts(sessionmaker: async_sessionmaker[AsyncSession], org_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Contact).where(Contact.org_id == org_id)) or 0)


async def test_same_renter_across_channels_and_formats_is_one_contact(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first = await deliver(client, sessionmaker, org.org_id, email="Mia.Lopez@Example.com", phone="(703) 868-3162")
    second = await deliver(client, sessionmaker, org.org_id, email="mailto:mia.lopez@example.com", first_name="mia")
    third = await deliver(
        client, sessionmaker, org.org_id, phone="+1 703.868.3162", event="missed_call", channel="phone"
    )
    assert first["contact_id"] == second["contact_id"] == third["contact_id"]
    assert second["match"]["verdict"] == "existing"
    assert any("email" in reason for reason in second["match"]["reasons"])
    async with sessionmaker() as session:
        events = list(
            await session.scalars(
                select(LeadEvent).where(
                    LeadEvent.lead_id == uuid.UUID(third["lead_id"]), LeadEvent.type == "missed_call"
                )
            )
        )
    assert events[0].data["match"]["verdict"] == "existing"
    assert events[0].data["match"]["reasons"]


async def test_email_to_a_and_phone_to_b_is_reviewed_not_guessed(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    a = await deliver(client, sessionmaker, org.org_id, email="ils.renter@example.com")
    b = await deliver(
        client,
        sessionmaker,
        org.org_id,
        phone="(512) 555-0142",
        event="missed_call",
        channel="phone",
        first_name=None,
        last_name=None,
    )
    both = await deliver(client, sessionmaker, org.org_id, email="ILS.Renter@example.com", phone="512-555-0142")
    assert both["match"]["verdict"] == "review"
    assert both["contact_id"] == a["contact_id"]
    assert both["review_item_id"]
    async with sessionmaker() as session:
        item = await session.get_one(ReviewItem, uuid.UUID(both["review_item_id"]))
    assert [str(cid) for cid in item.candidate_contact_ids] == [b["contact_id"]]
    assert any("conflict" in str(reason) for reason in item.reasons)


async def test_same_phone_with_a_clearly_different_name_is_reviewed_and_kept_separate(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    parent = await deliver(
        client, sessionmaker, org.org_id, phone="(703) 868-3162", first_name="Robert", last_name="King"
    )
    child = await deliver(
        client,
        sessionmaker,
        org.org_id,
        phone="703 868 3162",
        email="emma.k@example.com",
        first_name="Emma",
        last_name="Stone",
    )
    assert child["match"]["verdict"] == "review"
    assert child["contact_id"] != parent["contact_id"]
    assert child["review_item_id"]
    async with sessionmaker() as session:
        phone_owner = await session.scalar(
            select(ContactIdentity.contact_id).where(
                ContactIdentity.org_id == org.org_id, ContactIdentity.kind == "phone"
            )
        )
    assert str(phone_owner) == parent["contact_id"]
    same_person = await deliver(
        client, sessionmaker, org.org_id, phone="7038683162", first_name="Bob", last_name="King"
    )
    assert same_person["match"]["verdict"] in ("existing", "review")


async def test_ils_relay_is_a_thread_key_never_an_email(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    relay = "k3j4h5g6f7d8@convo.zillow.com"
    first = await deliver(client, sessionmaker, org.org_id, reply_to=relay, first_name="Ana", last_name="Diaz")
    follow_up = await deliver(
        client, sessionmaker, org.org_id, reply_to=relay, event="reply", first_name="Ana", last_name=None
    )
    other_thread = await deliver(
        client, sessionmaker, org.org_id, reply_to="zz99yy88xx77@convo.zillow.com", first_name="Ana", last_name="Diaz"
    )
    assert follow_up["contact_id"] == first["contact_id"]
    assert other_thread["contact_id"] != first["contact_id"]
    async with sessionmaker() as session:
        contact = await session.get_one(Contact, uuid.UUID(first["contact_id"]))
    assert contact.primary_email is None


async def test_placeholders_never_glue_strangers(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    one = await deliver(
        client, sessionmaker, org.org_id, email="none@none.com", phone="111-111-1111", first_name="Ann", last_name="Lee"
    )
    two = await deliver(
        client,
        sessionmaker,
        org.org_id,
        email="NONE@none.com",
        phone="(111) 111-1111",
        first_name="Ben",
        last_name="Ray",
    )
    assert one["contact_id"] != two["contact_id"]
    assert any("placeholder" in reason for reason in two["match"]["reasons"])


async def test_the_organizations_own_number_and_inbox_never_match(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await client.post(
        "/v1/properties",
        json={"name": "Oak", "phone_numbers": ["(512) 555-0100"], "inbound_alias": "oak@leads.example.com"},
        headers=org.headers,
    )
    assert created.status_code == 201
    one = await deliver(
        client,
        sessionmaker,
        org.org_id,
        phone="512-555-0100",
        email="oak@leads.example.com",
        first_name="Cy",
        last_name="Orr",
    )
    two = await deliver(
        client,
        sessionmaker,
        org.org_id,
        phone="+15125550100",
        email="Oak@Leads.Example.com",
        first_name="Di",
        last_name="Poe",
    )
    assert one["contact_id"] != two["contact_id"]
    assert any("own" in reason or "blocklist" in reason for reason in two["match"]["reasons"])


async def test_configured_blocklist_entries_by_kind(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    for entry in (
        {"kind": "email", "value": "Front.Desk@Example.com", "reason": "staff types it for walk-ins"},
        {"kind": "phone", "value": "(415) 555-0100"},
        {"kind": "email_domain", "value": "@placeholder.test"},
    ):
        response = await client.post("/v1/blocklist", json=entry, headers=org.headers)
        assert response.status_code == 201, response.text
    listed = (await client.get("/v1/blocklist", headers=org.headers)).json()
    assert {(item["kind"], item["value"]) for item in listed} == {
        ("email", "front.desk@example.com"),
        ("phone", "+14155550100"),
        ("email_domain", "placeholder.test"),
    }
    pairs = [
        {"email": "front.desk@example.com"},
        {"phone": "415.555.0100"},
        {"email": "anyone@placeholder.test"},
    ]
    for fields in pairs:
        first = await deliver(client, sessionmaker, org.org_id, first_name="Eve", last_name="One", **fields)
        second = await deliver(client, sessionmaker, org.org_id, first_name="Fay", last_name="Two", **fields)
        assert first["contact_id"] != second["contact_id"], fields
    bad = await client.post("/v1/blocklist", json={"kind": "phone", "value": "nope"}, headers=org.headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"].startswith("body")
    entry_id = listed[0]["id"]
    assert (await client.delete(f"/v1/blocklist/{entry_id}", headers=org.headers)).status_code == 204
    assert (await client.delete(f"/v1/blocklist/{entry_id}", headers=org.headers)).status_code == 404


async def test_keep_apart_is_remembered(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await deliver(client, sessionmaker, org.org_id, email="pair@example.com")
    await deliver(
        client,
        sessionmaker,
        org.org_id,
        phone="(646) 555-0142",
        channel="phone",
        event="missed_call",
        first_name=None,
        last_name=None,
    )
    conflict = await deliver(client, sessionmaker, org.org_id, email="pair@example.com", phone="646-555-0142")
    resolved = await client.post(
        f"/v1/review-items/{conflict['review_item_id']}/resolve",
        json={"action": "keep_apart", "note": "roommates"},
        headers=org.headers,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "kept_apart"
    again = await deliver(client, sessionmaker, org.org_id, email="pair@example.com", phone="(646) 555-0142")
    assert again["review_item_id"] is None
    assert again["match"]["verdict"] == "existing"
    queue = (await client.get("/v1/review-items", headers=org.headers)).json()
    assert queue["items"] == []
    assert queue["counts"]["kept_apart"] == 1
    repeat = await client.post(
        f"/v1/review-items/{conflict['review_item_id']}/resolve", json={"action": "merge"}, headers=org.headers
    )
    assert repeat.status_code == 409
