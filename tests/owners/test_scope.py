"""Scope: an agent sees and acts on its own, collaborated and pool leads; everything else is a 404."""

from __future__ import annotations

import csv
import io

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FakeClock
from tests.conftest import OrgFixture
from tests.owners.helpers import lead_row, new_lead, person, property_with_team

SessionMaker = async_sessionmaker[AsyncSession]


async def test_an_agent_gets_404_on_another_agents_lead_and_exports_only_its_own(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    property_id = await property_with_team(client, org, [(amy, 1), (bob, 1)])
    leads = [await new_lead(client, org, property_id) for _ in range(6)]
    owned = {lead_id: (await lead_row(sessionmaker, lead_id)).owner_id for lead_id in leads}
    amys = {lead_id for lead_id, owner in owned.items() if owner == amy.id}
    bobs = set(leads) - amys
    assert len(amys) == 3 and len(bobs) == 3
    theirs = next(iter(bobs))

    # reads: detail, timeline, tasks, tours, collaborators
    for path in ("", "/timeline", "/tasks", "/tours", "/collaborators"):
        assert (await client.get(f"/v1/leads/{theirs}{path}", headers=amy.headers)).status_code == 404, path
    # writes: edit, status, notes, activities, tasks, tours, collaborators
    writes = [
        ("PATCH", "", {"temperature": "cold"}, {"If-Match": "*"}),
        ("POST", "/status", {"status": "lost", "lost_reason": "spam"}, {}),
        ("POST", "/notes", {"body": "mine now"}, {}),
        ("POST", "/activities", {"kind": "call", "direction": "outbound"}, {}),
        ("POST", "/tasks", {"title": "call", "type": "call"}, {}),
        ("POST", "/tours", {"starts_at": "2026-06-05T15:00:00Z"}, {}),
        ("PUT", "/collaborators", {"user_ids": [str(amy.id)]}, {}),
    ]
    for method, path, body, extra in writes:
        response = await client.request(
            method, f"/v1/leads/{theirs}{path}", json=body, headers={**amy.headers, **extra}
        )
        assert response.status_code == 404, (method, path, response.text)
    assert (await lead_row(sessionmaker, theirs)).status == "new"
    contact_id = (await lead_row(sessionmaker, theirs)).contact_id
    assert (await client.get(f"/v1/contacts/{contact_id}", headers=amy.headers)).status_code == 404
    assert (await client.get(f"/v1/contacts/{contact_id}", headers=bob.headers)).status_code == 200
    tasks = await client.get("/v1/tasks", params={"lead_id": str(theirs)}, headers=amy.headers)
    assert tasks.status_code == 200 and tasks.json()["items"] == []

    listed = (await client.get("/v1/leads", headers=amy.headers)).json()["items"]
    assert {item["id"] for item in listed} == {str(lead_id) for lead_id in amys}
    exported = await client.get("/v1/leads/export.csv", headers=amy.headers)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["id"] for row in rows} == {str(lead_id) for lead_id in amys}
    everything = list(csv.DictReader(io.StringIO((await client.get("/v1/leads/export.csv", headers=org.headers)).text)))
    assert len(everything) == 6
    window = {"from": "2026-06-01T00:00:00Z", "to": "2026-06-03T00:00:00Z"}
    funnel = (await client.get("/v1/metrics/funnel", params=window, headers=amy.headers)).json()
    assert funnel["totals"]["leads"] == 3
    funnel = (await client.get("/v1/metrics/funnel", params=window, headers=org.headers)).json()
    assert funnel["totals"]["leads"] == 6
    mine = next(iter(amys))
    assert (await client.get(f"/v1/leads/{mine}", headers=amy.headers)).status_code == 200
    assert (await client.post(f"/v1/leads/{mine}/notes", json={"body": "hi"}, headers=amy.headers)).status_code == 201


async def test_collaborators_pool_and_agents_see_all_widen_the_scope(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob, cara = [await person(client, org, name) for name in ("Amy", "Bob", "Cara")]
    mine = await property_with_team(client, org, [(amy, 1)])
    pool = await property_with_team(client, org, [(amy, 1), (bob, 1)], strategy="pool")
    amys = await new_lead(client, org, mine)
    pooled = await new_lead(client, org, pool)
    assert (await client.get(f"/v1/leads/{amys}", headers=bob.headers)).status_code == 404
    assert (await client.get(f"/v1/leads/{pooled}", headers=bob.headers)).status_code == 200  # its property's pool
    assert (await client.get(f"/v1/leads/{pooled}", headers=cara.headers)).status_code == 404

    shared = await client.put(f"/v1/leads/{amys}/collaborators", json={"user_ids": [str(bob.id)]}, headers=amy.headers)
    assert shared.status_code == 200 and shared.json()["user_ids"] == [str(bob.id)]
    assert (await client.get(f"/v1/leads/{amys}", headers=bob.headers)).status_code == 200
    assert (await client.post(f"/v1/leads/{amys}/notes", json={"body": "x"}, headers=bob.headers)).status_code == 201
    # a collaborator works the lead but does not decide who else does
    again = await client.put(f"/v1/leads/{amys}/collaborators", json={"user_ids": []}, headers=bob.headers)
    assert again.status_code == 403
    unknown = await client.put(
        f"/v1/leads/{amys}/collaborators", json={"user_ids": [str(org.org_id)]}, headers=amy.headers
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.user_ids[0]"
    timeline = (await client.get(f"/v1/leads/{amys}/timeline", headers=amy.headers)).json()["items"]
    assert any(item["type"] == "collaborators_changed" for item in timeline)

    assert (
        await client.patch("/v1/owners/settings", json={"agents_see_all": True}, headers=amy.headers)
    ).status_code == 403
    widened = await client.patch("/v1/owners/settings", json={"agents_see_all": True}, headers=org.headers)
    assert widened.status_code == 200 and widened.json()["agents_see_all"] is True
    assert (await client.get(f"/v1/leads/{pooled}", headers=cara.headers)).status_code == 200


async def test_owner_changes_by_a_person_need_a_manager_or_the_org_setting(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    property_id = await property_with_team(client, org, [(amy, 1)])
    lead_id = await new_lead(client, org, property_id)
    patch = {"owner_id": str(bob.id)}
    denied = await client.patch(f"/v1/leads/{lead_id}", json=patch, headers={**amy.headers, "If-Match": "*"})
    assert denied.status_code == 403
    await client.patch("/v1/owners/settings", json={"agents_can_reassign": True}, headers=org.headers)
    moved = await client.patch(f"/v1/leads/{lead_id}", json=patch, headers={**amy.headers, "If-Match": "*"})
    assert moved.status_code == 200 and moved.json()["owner_id"] == str(bob.id)
    # and now it is Bob's: Amy's key no longer reaches it
    assert (await client.get(f"/v1/leads/{lead_id}", headers=amy.headers)).status_code == 404
