from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import User
from tests.conftest import OrgFixture
from tests.leads.helpers import get_lead, insert_leads, insert_property


async def test_patch_needs_the_current_etag(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id)
    fetched = await get_lead(client, org.headers, lead_id)
    assert fetched.headers["etag"] == '"1"'
    url = f"/v1/leads/{lead_id}"
    missing = await client.patch(url, json={"bedrooms": 2}, headers=org.headers)
    assert missing.status_code == 428
    assert missing.headers["content-type"] == "application/problem+json"
    stale = await client.patch(url, json={"bedrooms": 2}, headers={**org.headers, "If-Match": '"0"'})
    assert stale.status_code == 412
    ok = await client.patch(
        url, json={"bedrooms": 2, "budget_max": 2100, "first_name": "Ana"}, headers={**org.headers, "If-Match": '"1"'}
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert (body["bedrooms"], body["budget_max"], body["first_name"], body["version"]) == (2, 2100, "Ana", 2)
    assert body["source"] == "zillow"  # untouched: exclude_unset
    assert ok.headers["etag"] == '"2"'
    again = await client.patch(url, json={"bedrooms": 3}, headers={**org.headers, "If-Match": '"1"'})
    assert again.status_code == 412
    events = (await client.get(f"{url}/timeline", headers=org.headers)).json()["items"]
    [updated] = [event for event in events if event["type"] == "fields_updated"]
    assert updated["data"]["fields"]["bedrooms"] == {"from": None, "to": 2}
    assert updated["data"]["fields"]["first_name"]["to"] == "Ana"


async def test_two_agents_racing_with_the_same_etag_one_wins(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id)
    headers = {**org.headers, "If-Match": '"1"'}
    first, second = await asyncio.gather(
        client.patch(f"/v1/leads/{lead_id}", json={"bedrooms": 1}, headers=headers),
        client.patch(f"/v1/leads/{lead_id}", json={"bedrooms": 2}, headers=headers),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    winner = first if first.status_code == 200 else second
    final = (await get_lead(client, org.headers, lead_id)).json()
    assert final["version"] == 2
    assert final["bedrooms"] == winner.json()["bedrooms"]


async def test_owner_temperature_property_changes_are_checked_and_logged(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id)
    agent_id = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert(User).values(id=agent_id, org_id=org.org_id, email="agent@example.org", name="Agent", role="agent")
        )
    mine = await insert_property(sessionmaker, org.org_id)
    theirs = await insert_property(sessionmaker, other_org.org_id)
    url, version = f"/v1/leads/{lead_id}", 1

    async def patch(body: dict[str, object]) -> httpx.Response:
        return await client.patch(url, json=body, headers={**org.headers, "If-Match": f'"{version}"'})

    foreign_owner = await patch({"owner_id": str(other_org.admin_user_id)})
    assert foreign_owner.status_code == 422
    assert foreign_owner.json()["errors"][0]["field"] == "body.owner_id"
    foreign_property = await patch({"property_id": str(theirs)})
    assert foreign_property.status_code == 422
    assert foreign_property.json()["errors"][0]["field"] == "body.property_id"
    changed = await patch({"owner_id": str(agent_id), "temperature": "cold", "property_id": str(mine)})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["owner_id"], body["temperature"], body["property_id"]) == (str(agent_id), "cold", str(mine))
    events = (await client.get(f"{url}/timeline", headers=org.headers)).json()["items"]
    by_type = {event["type"]: event for event in events}
    assert by_type["owner_changed"]["data"] == {"from": None, "to": str(agent_id)}
    assert by_type["temperature_changed"]["data"] == {"from": "hot", "to": "cold"}
    assert by_type["property_changed"]["data"]["to"] == str(mine)
    assert "fields_updated" not in by_type
    version = 2
    unchanged = await patch({"temperature": "cold"})
    assert unchanged.json()["version"] == 2  # nothing changed, no new version


async def test_another_organizations_lead_is_404(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id)
    headers = {**other_org.headers, "If-Match": '"1"'}
    for method, path, body in [
        ("GET", "", None),
        ("PATCH", "", {"bedrooms": 1}),
        ("POST", "/status", {"status": "contacted"}),
        ("GET", "/timeline", None),
    ]:
        response = await client.request(method, f"/v1/leads/{lead_id}{path}", json=body, headers=headers)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
    listed = await client.get("/v1/leads", headers=other_org.headers)
    assert listed.json()["items"] == []
