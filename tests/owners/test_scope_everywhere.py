"""The agent scope beyond the lead routes: review queue, merges, inbound, tour calendar files, MITS, consent,
previews and rule dry runs follow the one rule (services/api/owners/scope.py); outside it is a 404."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FakeClock
from shared.models import InboundMessage, ReviewItem
from tests.conftest import OrgFixture
from tests.owners.helpers import Person, lead_row, new_lead, person, property_with_team

SessionMaker = async_sessionmaker[AsyncSession]


async def _two_agents(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> tuple[Person, Person, uuid.UUID, uuid.UUID]:
    """Amy and Bob, each alone on a property's team, each with one lead: (amy, bob, amy's lead, bob's lead)."""
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    amys = await new_lead(client, org, await property_with_team(client, org, [(amy, 1)]))
    bobs = await new_lead(client, org, await property_with_team(client, org, [(bob, 1)]))
    assert (await lead_row(sessionmaker, amys)).owner_id == amy.id
    assert (await lead_row(sessionmaker, bobs)).owner_id == bob.id
    return amy, bob, amys, bobs


async def _review_item(sessionmaker: SessionMaker, org: OrgFixture, **fields: object) -> str:
    async with sessionmaker() as session, session.begin():
        item = ReviewItem(id=uuid.uuid4(), org_id=org.org_id, **fields)
        session.add(item)
    return str(item.id)


async def test_review_queue_follows_the_scope(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob, amys, bobs = await _two_agents(client, org, sessionmaker)
    bob_contact = (await lead_row(sessionmaker, bobs)).contact_id
    amy_contact = (await lead_row(sessionmaker, amys)).contact_id
    reasons = [{"category": "fair_housing_voucher", "phrase": "section 8"}]
    sensitive = await _review_item(
        sessionmaker, org, kind="sensitive_conversation", lead_id=bobs, contact_id=bob_contact, reasons=reasons
    )
    duplicate = await _review_item(
        sessionmaker, org, kind="possible_duplicate", contact_id=bob_contact, candidate_contact_ids=[bob_contact]
    )
    own = await _review_item(
        sessionmaker, org, kind="sensitive_conversation", lead_id=amys, contact_id=amy_contact, reasons=reasons
    )

    listed = (await client.get("/v1/review-items", headers=amy.headers)).json()
    assert [item["id"] for item in listed["items"]] == [own]
    assert listed["counts"]["open"] == 1
    for item_id in (sensitive, duplicate):
        assert (await client.get(f"/v1/review-items/{item_id}", headers=amy.headers)).status_code == 404
    assert (await client.get(f"/v1/review-items/{own}", headers=amy.headers)).status_code == 200
    by_contact = await client.get("/v1/review-items", params={"contact_id": str(bob_contact)}, headers=amy.headers)
    assert by_contact.json()["items"] == []

    bobs_view = (await client.get("/v1/review-items", headers=bob.headers)).json()
    assert {item["id"] for item in bobs_view["items"]} == {sensitive, duplicate}
    everything = (await client.get("/v1/review-items", headers=org.headers)).json()
    assert {item["id"] for item in everything["items"]} == {sensitive, duplicate, own}
    assert everything["counts"]["open"] == 3
    # resolving is for managers (docs/access.md); an agent is refused before anything is looked up
    resolve = await client.post(f"/v1/review-items/{own}/resolve", json={"action": "resolve"}, headers=amy.headers)
    assert resolve.status_code == 403
    resolved = await client.post(
        f"/v1/review-items/{sensitive}/resolve", json={"action": "resolve"}, headers=org.headers
    )
    assert resolved.status_code == 200, resolved.text


async def test_merges_follow_the_people_in_scope(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob, _amys, bobs = await _two_agents(client, org, sessionmaker)
    bobs_property = (await lead_row(sessionmaker, bobs)).property_id
    twin = await new_lead(client, org, bobs_property, email=f"twin.{uuid.uuid4().hex[:6]}@example.org")
    survivor, merged = (await lead_row(sessionmaker, bobs)).contact_id, (await lead_row(sessionmaker, twin)).contact_id
    merge = await client.post(
        f"/v1/contacts/{survivor}/merge", json={"merge_contact_id": str(merged)}, headers=org.headers
    )
    assert merge.status_code == 201, merge.text
    merge_id = merge.json()["id"]

    assert (await client.get(f"/v1/merges/{merge_id}", headers=amy.headers)).status_code == 404
    assert (await client.get(f"/v1/merges/{merge_id}", headers=bob.headers)).status_code == 200
    assert (await client.get(f"/v1/merges/{merge_id}", headers=org.headers)).status_code == 200
    undo = await client.post(f"/v1/merges/{merge_id}/undo", headers=amy.headers)
    assert undo.status_code == 403


async def test_inbound_deliveries_follow_the_lead_they_became(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, _bob, amys, bobs = await _two_agents(client, org, sessionmaker)
    stored = {}
    for name, lead_id in (("amy", amys), ("bob", bobs), ("nobody", None)):
        answer = await client.post(
            f"/v1/intake/{org.intake_key}/web-form", json={"email": f"{name}@example.org", "name": name.title()}
        )
        assert answer.status_code == 202, answer.text
        stored[name] = answer.json()["inbound_id"]
        async with sessionmaker() as session, session.begin():  # what the worker records once it is processed
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == uuid.UUID(stored[name]))
                .values(status="processed" if lead_id else "ignored", lead_id=lead_id)
            )

    listed = (await client.get("/v1/inbound", headers=amy.headers)).json()["items"]
    assert [row["id"] for row in listed] == [stored["amy"]]
    assert (await client.get(f"/v1/inbound/{stored['amy']}", headers=amy.headers)).status_code == 200
    for other in ("bob", "nobody"):
        assert (await client.get(f"/v1/inbound/{stored[other]}", headers=amy.headers)).status_code == 404
    everything = (await client.get("/v1/inbound", headers=org.headers)).json()["items"]
    assert set(stored.values()) <= {row["id"] for row in everything}


async def test_tour_files_mits_consent_previews_and_dry_runs_follow_the_scope(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob, amys, bobs = await _two_agents(client, org, sessionmaker)
    tour = await client.post(f"/v1/leads/{bobs}/tours", json={"starts_at": "2026-06-05T15:00:00Z"}, headers=org.headers)
    assert tour.status_code == 201, tour.text
    ics = f"/v1/tours/{tour.json()['id']}.ics"
    assert (await client.get(ics, headers=amy.headers)).status_code == 404
    answer = await client.get(ics, headers=bob.headers)
    assert answer.status_code == 200 and answer.text.startswith("BEGIN:VCALENDAR")

    assert (await client.get(f"/v1/leads/{bobs}/mits", headers=amy.headers)).status_code == 404
    assert (await client.get(f"/v1/leads/{amys}/mits", headers=amy.headers)).status_code == 200
    both = await client.get("/v1/leads/mits", params={"id": [str(amys), str(bobs)]}, headers=amy.headers)
    assert both.status_code == 404 and str(amys) not in both.text
    assert (await client.get("/v1/leads/mits", params={"id": [str(amys), str(bobs)]}, headers=org.headers)).is_success

    bob_contact = (await lead_row(sessionmaker, bobs)).contact_id
    assert (await client.get(f"/v1/contacts/{bob_contact}/consent", headers=amy.headers)).status_code == 404
    assert (await client.get(f"/v1/contacts/{bob_contact}/consent", headers=bob.headers)).status_code == 200
    change = {"channel": "sms", "state": "opted_out", "note": "asked by phone"}
    refused = await client.post(f"/v1/contacts/{bob_contact}/consent", json=change, headers=amy.headers)
    assert refused.status_code == 404
    assert (await client.get(f"/v1/contacts/{bob_contact}/consent", headers=bob.headers)).json() == (
        await client.get(f"/v1/contacts/{bob_contact}/consent", headers=org.headers)
    ).json()

    template = await client.post(
        "/v1/templates", json={"key": "hello_scope", "channel": "sms", "body": "Hi {first_name}"}, headers=org.headers
    )
    assert template.status_code == 201, template.text
    preview = f"/v1/templates/{template.json()['id']}/preview"
    assert (await client.post(preview, json={"lead_id": str(bobs)}, headers=amy.headers)).status_code == 404
    assert (await client.post(preview, json={"lead_id": str(amys)}, headers=amy.headers)).status_code == 200

    dry_run = {"event": "created", "lead_id": str(bobs)}
    assert (await client.post("/v1/automation/rules/test", json=dry_run, headers=amy.headers)).status_code == 404
    mine = await client.post("/v1/automation/rules/test", json=dry_run | {"lead_id": str(amys)}, headers=amy.headers)
    assert mine.status_code == 200, mine.text

    assert (await client.get("/v1/audit", headers=amy.headers)).status_code == 403  # managers' record


async def test_naming_another_agents_renter_neither_writes_to_nor_shows_their_lead(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob, _amys, bobs = await _two_agents(client, org, sessionmaker)
    lead = await lead_row(sessionmaker, bobs)
    email = (await client.get(f"/v1/leads/{bobs}", headers=bob.headers)).json()["email"]
    before = (await client.get(f"/v1/leads/{bobs}/timeline", headers=bob.headers)).json()

    attach = await client.post(
        "/v1/leads",
        params={"on_duplicate": "attach"},
        json={"email": email, "property_id": str(lead.property_id), "first_name": "Amy's", "bedrooms": 3},
        headers=amy.headers,
    )
    assert attach.status_code == 409, attach.text
    assert email not in attach.text and "Amy's" not in attach.text
    assert attach.json()["errors"][0]["field"] == "body.email"
    invite = await client.post(
        "/v1/leads/invitations", json={"emails": [email], "property_id": str(lead.property_id)}, headers=amy.headers
    )
    assert invite.status_code == 409 and invite.json()["errors"][0]["field"] == "body.emails.0"
    assert (await client.get(f"/v1/leads/{bobs}/timeline", headers=bob.headers)).json() == before
    assert (await lead_row(sessionmaker, bobs)).bedrooms is None

    # the lead's own agent (and a manager) still attach and invite as before
    mine = await client.post(
        "/v1/leads",
        params={"on_duplicate": "attach"},
        json={"email": email, "property_id": str(lead.property_id), "bedrooms": 3},
        headers=bob.headers,
    )
    assert mine.status_code == 200 and mine.json()["id"] == str(bobs) and mine.json()["bedrooms"] == 3
    invited = await client.post(
        "/v1/leads/invitations", json={"emails": [email], "property_id": str(lead.property_id)}, headers=org.headers
    )
    assert invited.status_code == 200 and invited.json()["items"][0]["lead_id"] == str(bobs)
