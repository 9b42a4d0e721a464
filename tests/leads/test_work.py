from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FakeClock
from shared.models import Lead
from tests.conftest import OrgFixture
from tests.leads.helpers import get_lead, insert_leads, insert_property


async def _types(client: httpx.AsyncClient, org: OrgFixture, lead_id: object) -> list[str]:
    items = (await client.get(f"/v1/leads/{lead_id}/timeline", headers=org.headers)).json()["items"]
    return [item["type"] for item in items]


async def test_outbound_call_is_the_first_response(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = datetime.now(UTC) - timedelta(minutes=10)
    [lead_id] = await insert_leads(sessionmaker, org.org_id, start=created)
    note = await client.post(f"/v1/leads/{lead_id}/notes", json={"body": "Prefers texts"}, headers=org.headers)
    assert note.status_code == 201
    assert (note.json()["type"], note.json()["data"]) == ("note", {"body": "Prefers texts"})
    inbound = await client.post(
        f"/v1/leads/{lead_id}/activities", json={"kind": "call", "direction": "inbound"}, headers=org.headers
    )
    assert inbound.status_code == 201
    assert (await get_lead(client, org.headers, lead_id)).json()["status"] == "new"
    called_at = created + timedelta(minutes=4)
    outbound = await client.post(
        f"/v1/leads/{lead_id}/activities",
        json={"kind": "call", "direction": "outbound", "outcome": "connected", "occurred_at": called_at.isoformat()},
        headers=org.headers,
    )
    assert outbound.status_code == 201, outbound.text
    assert outbound.json()["type"] == "call_logged"
    lead = (await get_lead(client, org.headers, lead_id)).json()
    assert lead["status"] == "contacted"
    assert lead["first_response_seconds"] == 240
    assert lead["next_action"]["type"] == "schedule_tour"  # rules ran
    await client.post(f"/v1/leads/{lead_id}/status", json={"status": "application_started"}, headers=org.headers)
    again = await client.post(
        f"/v1/leads/{lead_id}/activities", json={"kind": "meeting", "direction": "outbound"}, headers=org.headers
    )
    assert again.status_code == 201
    lead = (await get_lead(client, org.headers, lead_id)).json()
    assert (lead["status"], lead["first_response_seconds"]) == ("application_started", 240)  # never backward
    types = await _types(client, org, lead_id)
    assert types.count("status_changed") == 2
    assert {"note", "call_logged", "meeting_logged"} <= set(types)


async def test_tours_move_the_lead_forward(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id, start=clock.now() - timedelta(days=1))
    starts = (clock.now() + timedelta(days=1)).isoformat()
    booked = await client.post(
        f"/v1/leads/{lead_id}/tours", json={"starts_at": starts, "tour_type": "virtual"}, headers=org.headers
    )
    assert booked.status_code == 201, booked.text
    tour = booked.json()
    assert (tour["status"], tour["tour_type"]) == ("scheduled", "virtual")
    assert (await get_lead(client, org.headers, lead_id)).json()["status"] == "tour_booked"
    listed = await client.get(f"/v1/leads/{lead_id}/tours", headers=org.headers)
    assert [item["id"] for item in listed.json()] == [tour["id"]]
    early = await client.patch(f"/v1/tours/{tour['id']}", json={"status": "completed"}, headers=org.headers)
    assert early.status_code == 409  # not before the start time
    clock.advance(days=1, minutes=1)
    done = await client.patch(f"/v1/tours/{tour['id']}", json={"status": "completed"}, headers=org.headers)
    assert done.status_code == 200, done.text
    assert (await get_lead(client, org.headers, lead_id)).json()["status"] == "toured"
    second = await client.post(f"/v1/leads/{lead_id}/tours", json={"starts_at": starts}, headers=org.headers)
    assert second.status_code == 201, second.text
    assert (await get_lead(client, org.headers, lead_id)).json()["status"] == "toured"  # not backward
    no_show = await client.patch(f"/v1/tours/{second.json()['id']}", json={"status": "no_show"}, headers=org.headers)
    assert no_show.json()["status"] == "no_show"
    types = await _types(client, org, lead_id)
    assert {"tour_booked", "tour_completed", "tour_no_show"} <= set(types)


async def test_tasks_lifecycle_and_filters(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id)
    now = datetime.now(UTC)
    due_soon = await client.post(
        f"/v1/leads/{lead_id}/tasks",
        json={"title": "Call back", "type": "call", "due_at": (now - timedelta(hours=1)).isoformat()},
        headers=org.headers,
    )
    assert due_soon.status_code == 201, due_soon.text
    task = due_soon.json()
    assert (task["owner_id"], task["status"]) == (str(org.admin_user_id), "open")
    later = await client.post(
        f"/v1/leads/{lead_id}/tasks",
        json={"title": "Send brochure", "due_at": (now + timedelta(days=2)).isoformat()},
        headers=org.headers,
    )
    assert later.status_code == 201
    for_lead = (await client.get(f"/v1/leads/{lead_id}/tasks", headers=org.headers)).json()
    assert [item["title"] for item in for_lead] == ["Call back", "Send brochure"]
    overdue = await client.get(f"/v1/tasks?owner_id=me&status=open&due_before={_q(now)}", headers=org.headers)
    assert [item["id"] for item in overdue.json()["items"]] == [task["id"]]
    pages, cursor = [], None
    while True:
        page = (
            await client.get("/v1/tasks?limit=1" + (f"&cursor={cursor}" if cursor else ""), headers=org.headers)
        ).json()
        pages += [item["title"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert pages == ["Call back", "Send brochure"]
    done = await client.patch(f"/v1/tasks/{task['id']}", json={"status": "done"}, headers=org.headers)
    assert done.status_code == 200
    assert done.json()["completed_at"] is not None
    assert "task_completed" in await _types(client, org, lead_id)
    assert "task_created" in await _types(client, org, lead_id)
    still_open = await client.get("/v1/tasks?status=open", headers=org.headers)
    assert [item["title"] for item in still_open.json()["items"]] == ["Send brochure"]


def _q(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_status_labels_and_contact(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id, with_identities=True)
    label = await client.post(
        "/v1/status-labels", json={"label": "Warm prospect", "canonical_status": "qualified"}, headers=org.headers
    )
    assert label.status_code == 201, label.text
    again = await client.post(
        "/v1/status-labels", json={"label": "Warm prospect", "canonical_status": "qualified"}, headers=org.headers
    )
    assert again.status_code == 409
    assert [row["label"] for row in (await client.get("/v1/status-labels", headers=org.headers)).json()] == [
        "Warm prospect"
    ]
    assert (await client.get("/v1/status-labels", headers=other_org.headers)).json() == []
    url = f"/v1/leads/{lead_id}/status"
    wrong = await client.post(
        url, json={"status": "contacted", "status_label_id": label.json()["id"]}, headers=org.headers
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "body.status_label_id"
    moved = await client.post(
        url, json={"status": "qualified", "status_label_id": label.json()["id"]}, headers=org.headers
    )
    assert moved.status_code == 200
    assert (moved.json()["status"], moved.json()["status_label"]) == ("qualified", "Warm prospect")

    contact = await client.get(f"/v1/contacts/{moved.json()['contact_id']}", headers=org.headers)
    assert contact.status_code == 200
    body = contact.json()
    assert [lead["id"] for lead in body["leads"]] == [str(lead_id)]
    assert {identity["kind"] for identity in body["identities"]} == {"email", "phone"}
    foreign = await client.get(f"/v1/contacts/{moved.json()['contact_id']}", headers=other_org.headers)
    assert foreign.status_code == 404


async def test_invitations_create_once(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    property_id = str(await insert_property(sessionmaker, org.org_id))
    emails = [f"Applicant{n}@Example.org" for n in range(10)]
    first = await client.post(
        "/v1/leads/invitations", json={"emails": emails, "property_id": property_id}, headers=org.headers
    )
    assert first.status_code == 200, first.text
    items = first.json()["items"]
    assert [item["email"] for item in items] == [email.lower() for email in emails]
    assert all(item["created"] for item in items)
    assert len({item["lead_id"] for item in items}) == 10
    again = await client.post(
        "/v1/leads/invitations",
        json={"emails": emails, "property_id": property_id, "message": "Apply today"},
        headers=org.headers,
    )
    assert [item["created"] for item in again.json()["items"]] == [False] * 10
    assert [item["lead_id"] for item in again.json()["items"]] == [item["lead_id"] for item in items]
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(Lead).where(Lead.org_id == org.org_id))
    assert count == 10
    types = await _types(client, org, items[0]["lead_id"])
    assert types.count("invitation_sent") == 2
    invalid = await client.post(
        "/v1/leads/invitations", json={"emails": ["ok@example.org", "nope", "none@none.com"]}, headers=org.headers
    )
    assert invalid.status_code == 422
    assert [error["field"] for error in invalid.json()["errors"]] == ["body.emails.1"]
    placeholder = await client.post("/v1/leads/invitations", json={"emails": ["none@none.com"]}, headers=org.headers)
    assert placeholder.status_code == 422
    assert placeholder.json()["errors"][0]["field"] == "body.emails.0"
