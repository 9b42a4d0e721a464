from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads


async def test_another_organizations_objects_are_404_everywhere(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id)
    now = datetime.now(UTC).isoformat()
    task = (await client.post(f"/v1/leads/{lead_id}/tasks", json={"title": "x"}, headers=org.headers)).json()
    tour = (await client.post(f"/v1/leads/{lead_id}/tours", json={"starts_at": now}, headers=org.headers)).json()
    contact_id = (await client.get(f"/v1/leads/{lead_id}", headers=org.headers)).json()["contact_id"]
    lead = f"/v1/leads/{lead_id}"
    attempts = [
        ("GET", lead, None),
        ("PATCH", lead, {"bedrooms": 1}),
        ("POST", f"{lead}/status", {"status": "contacted"}),
        ("GET", f"{lead}/timeline", None),
        ("POST", f"{lead}/notes", {"body": "x"}),
        ("POST", f"{lead}/activities", {"kind": "call"}),
        ("POST", f"{lead}/tasks", {"title": "x"}),
        ("GET", f"{lead}/tasks", None),
        ("POST", f"{lead}/tours", {"starts_at": now}),
        ("GET", f"{lead}/tours", None),
        ("PATCH", f"/v1/tasks/{task['id']}", {"status": "done"}),
        ("PATCH", f"/v1/tours/{tour['id']}", {"status": "completed"}),
        ("GET", f"/v1/contacts/{contact_id}", None),
    ]
    headers = {**other_org.headers, "If-Match": '"1"'}
    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/tasks", headers=other_org.headers)).json()["items"] == []
    assert (await client.get("/v1/leads?q=renter0", headers=other_org.headers)).json()["items"] == []
