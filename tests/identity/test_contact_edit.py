"""PATCH /v1/contacts/{id}: an agent corrects a renter's name, email or phone without a second guest card."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import clock
from shared.models import LeadEvent
from tests.conftest import OrgFixture
from tests.owners.helpers import person


async def _lead(client: httpx.AsyncClient, org: OrgFixture, **fields: Any) -> dict[str, Any]:
    created = await client.post("/v1/leads", json={"first_name": "Dana", **fields}, headers=org.headers)
    assert created.status_code == 201, created.text
    return dict(created.json())


async def _contact(client: httpx.AsyncClient, org: OrgFixture, contact_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/contacts/{contact_id}", headers=org.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_new_phone_becomes_the_primary_and_matches_the_renter_afterwards(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    lead = await _lead(client, org, email=f"dana.{uuid.uuid4().hex[:6]}@example.org")
    contact_id = lead["contact_id"]
    edited = await client.patch(
        f"/v1/contacts/{contact_id}", json={"phone": "(512) 555-0148", "last_name": "Reyes"}, headers=org.headers
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert (body["phone"], body["last_name"]) == ("+15125550148", "Reyes")
    assert ("phone", "+15125550148") in {(i["kind"], i["value"]) for i in body["identities"]}

    # the renter's next contact by that number is the same person: adding them again is a duplicate
    again = await client.post("/v1/leads", json={"phone": "512-555-0148"}, headers=org.headers)
    assert again.status_code == 409, again.text
    assert again.json()["existing_contact_id"] == contact_id

    timeline = await client.get(f"/v1/leads/{lead['id']}/timeline", headers=org.headers)
    edits = [e for e in timeline.json()["items"] if e["type"] == "fields_updated" and "contact_fields" in e["data"]]
    assert [sorted(e["data"]["contact_fields"]) for e in edits] == [["last_name", "phone"]]
    assert "+15125550148" not in str(edits)  # the timeline names fields, never the personal data itself


async def test_a_value_another_contact_holds_is_a_409_naming_it_and_nothing_changes(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    first = await _lead(client, org, phone="+15125550111")
    second = await _lead(client, org, email=f"sam.{uuid.uuid4().hex[:6]}@example.org", first_name="Sam")
    refused = await client.patch(
        f"/v1/contacts/{second['contact_id']}",
        json={"phone": "512 555 0111", "first_name": "Samuel"},
        headers=org.headers,
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["existing_contact_id"] == first["contact_id"]
    unchanged = await _contact(client, org, second["contact_id"])
    assert (unchanged["first_name"], unchanged["phone"]) == ("Sam", None)


async def test_an_unusable_value_is_a_422_naming_the_field(client: httpx.AsyncClient, org: OrgFixture) -> None:
    lead = await _lead(client, org, phone="+15125550122")
    for body, field in (({"phone": "555-555-5555"}, "body.phone"), ({"email": "not-an-address"}, "body.email")):
        refused = await client.patch(f"/v1/contacts/{lead['contact_id']}", json=body, headers=org.headers)
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == [field]


async def test_removing_a_wrong_identity_detaches_it_and_the_primary_moves_on(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    wrong = f"wrong.{uuid.uuid4().hex[:6]}@example.org"
    lead = await _lead(client, org, email=wrong)
    contact_id = lead["contact_id"]
    right = f"right.{uuid.uuid4().hex[:6]}@example.org"
    assert (
        await client.patch(f"/v1/contacts/{contact_id}", json={"email": right}, headers=org.headers)
    ).status_code == 200
    removed = await client.patch(
        f"/v1/contacts/{contact_id}",
        json={"remove_identities": [{"kind": "email", "value": wrong}]},
        headers=org.headers,
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["email"] == right
    assert {i["value"] for i in removed.json()["identities"]} == {right}
    # the wrong address no longer belongs to anyone: a new renter may use it
    assert (await client.post("/v1/leads", json={"email": wrong}, headers=org.headers)).status_code == 201

    unknown = await client.patch(
        f"/v1/contacts/{contact_id}",
        json={"remove_identities": [{"kind": "email", "value": wrong}]},
        headers=org.headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "body.remove_identities.0"


async def test_an_agent_edits_only_renters_in_scope(client: httpx.AsyncClient, org: OrgFixture) -> None:
    agent = await person(client, org, "Ada Agent")
    theirs = await _lead(client, org, phone="+15125550133", owner_id=str(agent.id))
    others = await _lead(client, org, phone="+15125550144", owner_id=str(org.admin_user_id))
    assert (
        await client.patch(f"/v1/contacts/{others['contact_id']}", json={"first_name": "X"}, headers=agent.headers)
    ).status_code == 404
    allowed = await client.patch(
        f"/v1/contacts/{theirs['contact_id']}", json={"first_name": "Dani"}, headers=agent.headers
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["first_name"] == "Dani"


async def test_an_edit_does_not_wait_for_a_row_being_written_that_points_at_the_renter(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A renter's event being written (its foreign keys take FOR KEY SHARE on the contact and the lead) while an
    agent corrects the name: the edit locks the contact FOR NO KEY UPDATE, which does not wait for that share
    lock. With FOR UPDATE it waited for the other transaction, and two such waits in opposite order deadlock."""
    lead = await _lead(client, org, email=f"dana.{uuid.uuid4().hex[:6]}@example.org")
    async with sessionmaker() as other, other.begin():
        other.add(
            LeadEvent(
                org_id=org.org_id,
                lead_id=uuid.UUID(lead["id"]),
                contact_id=uuid.UUID(lead["contact_id"]),
                type="note",
                occurred_at=clock.now(),
                actor_type="system",
                data={},
            )
        )
        await other.flush()  # not committed: the share locks on the contact and the lead stay held
        edit = client.patch(f"/v1/contacts/{lead['contact_id']}", json={"last_name": "Reyes"}, headers=org.headers)
        edited = await asyncio.wait_for(edit, 10)
    assert edited.status_code == 200, edited.text
    assert (await _contact(client, org, lead["contact_id"]))["last_name"] == "Reyes"
