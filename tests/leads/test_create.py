from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import OrgFixture
from tests.leads.helpers import insert_property


async def test_manual_add_then_duplicates_by_email_or_phone(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    property_id = str(await insert_property(sessionmaker, org.org_id))
    created = await client.post(
        "/v1/leads",
        json={
            "first_name": "Dana",
            "last_name": "Reyes",
            "email": "Dana.Reyes@Example.org",
            "phone": "(512) 555-0147",
            "property_id": property_id,
            "bedrooms": 2,
            "budget_max": 1800,
            "move_in_date": "2027-01-15",
        },
        headers=org.headers,
    )
    assert created.status_code == 201, created.text
    lead = created.json()
    assert (lead["email"], lead["phone"], lead["kind"], lead["status"]) == (
        "dana.reyes@example.org",
        "+15125550147",
        "tenant",
        "new",
    )
    assert (lead["source"], lead["bedrooms"], lead["move_in_date"]) == ("manual", 2, "2027-01-15")
    assert created.headers["etag"] == '"1"'
    timeline = (await client.get(f"/v1/leads/{lead['id']}/timeline", headers=org.headers)).json()["items"]
    assert "created" in {event["type"] for event in timeline}

    for duplicate in ({"email": " DANA.REYES@example.ORG "}, {"phone": "+1 512-555-0147"}, {"phone": "5125550147"}):
        conflict = await client.post("/v1/leads", json={"first_name": "D", **duplicate}, headers=org.headers)
        assert conflict.status_code == 409, duplicate
        problem = conflict.json()
        assert problem["existing_lead_id"] == lead["id"]
        assert problem["existing_contact_id"] == lead["contact_id"]

    same_property = await client.post(
        "/v1/leads?on_duplicate=attach",
        json={"phone": "512.555.0147", "property_id": property_id, "pets": True},
        headers=org.headers,
    )
    assert same_property.status_code == 200, same_property.text
    assert same_property.json()["id"] == lead["id"]  # the open lead for that property is reused
    assert same_property.json()["pets"] is True  # blanks filled, known values kept
    assert same_property.json()["bedrooms"] == 2

    other_property = await client.post(
        "/v1/leads?on_duplicate=attach", json={"email": "dana.reyes@example.org", "kind": "tenant"}, headers=org.headers
    )
    assert other_property.status_code == 201
    attached = other_property.json()
    assert attached["contact_id"] == lead["contact_id"]
    assert attached["id"] != lead["id"]

    contact = await client.get(f"/v1/contacts/{lead['contact_id']}", headers=org.headers)
    if contact.status_code == 200:  # contacts router
        assert {item["id"] for item in contact.json()["leads"]} == {lead["id"], attached["id"]}


async def test_manual_add_validates_input(client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture) -> None:
    empty = await client.post("/v1/leads", json={"bedrooms": 1}, headers=org.headers)
    assert empty.status_code == 422
    bad = await client.post("/v1/leads", json={"email": "not-an-email", "phone": "12"}, headers=org.headers)
    assert bad.status_code == 422
    assert {error["field"] for error in bad.json()["errors"]} == {"body.email", "body.phone"}
    foreign = await client.post(
        "/v1/leads", json={"first_name": "A", "owner_id": str(other_org.admin_user_id)}, headers=org.headers
    )
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "body.owner_id"


async def test_concurrent_manual_adds_of_one_person_make_one_contact(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    bodies = [{"first_name": "Sam", "email": "sam.race@example.org", "phone": "512-555-0199"}] * 2
    first, second = await asyncio.gather(*(client.post("/v1/leads", json=body, headers=org.headers) for body in bodies))
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    winner, loser = (first, second) if first.status_code == 201 else (second, first)
    assert loser.json()["existing_contact_id"] == winner.json()["contact_id"]
    assert loser.json()["existing_lead_id"] == winner.json()["id"]


async def test_the_organizations_own_number_is_not_a_duplicate_key(client: httpx.AsyncClient, org: OrgFixture) -> None:
    office = await client.post(
        "/v1/properties", json={"name": "Office", "phone_numbers": ["512-555-0100"]}, headers=org.headers
    )
    assert office.status_code == 201
    first = await client.post("/v1/leads", json={"first_name": "A", "phone": "5125550100"}, headers=org.headers)
    second = await client.post("/v1/leads", json={"first_name": "B", "phone": "5125550100"}, headers=org.headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["contact_id"] != second.json()["contact_id"]
