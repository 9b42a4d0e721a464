from __future__ import annotations

import itertools

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.leads.status import ALLOWED_TRANSITIONS, allowed_targets
from shared.enums import LeadStatus
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads

PAIRS = list(itertools.product(LeadStatus, LeadStatus))


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
async def test_every_status_move_follows_the_table(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    current: LeadStatus,
    target: LeadStatus,
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id, status=current.value)
    body: dict[str, str] = {"status": target.value}
    if target == LeadStatus.lost:
        body["lost_reason"] = "price"
    response = await client.post(f"/v1/leads/{lead_id}/status", json=body, headers=org.headers)
    if target in ALLOWED_TRANSITIONS[current]:
        assert response.status_code == 200, response.text
        moved = response.json()
        assert moved["status"] == target
        assert moved["version"] == 2
        assert response.headers["etag"] == '"2"'
        timeline = await client.get(f"/v1/leads/{lead_id}/timeline?type=status_changed", headers=org.headers)
        [event] = timeline.json()["items"]
        assert event["data"]["from"] == current
        assert event["data"]["to"] == target
        assert event["actor_type"] == "user"
        assert event["actor_id"] == str(org.admin_user_id)
    else:
        assert response.status_code == 409, response.text
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["allowed"] == allowed_targets(current)


async def test_lost_needs_a_known_reason_and_goes_cold(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id)
    url = f"/v1/leads/{lead_id}/status"
    missing = await client.post(url, json={"status": "lost"}, headers=org.headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "body.lost_reason"
    unknown = await client.post(url, json={"status": "lost", "lost_reason": "meh"}, headers=org.headers)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "body.lost_reason"
    lost = await client.post(
        url,
        json={"status": "lost", "lost_reason": "rented_elsewhere", "lost_reason_text": "Moved"},
        headers=org.headers,
    )
    assert lost.status_code == 200, lost.text
    body = lost.json()
    assert (body["status"], body["temperature"], body["lost_reason"]) == ("lost", "cold", "rented_elsewhere")
    assert body["lost_reason_text"] == "Moved"
    assert body["next_action"] is None
    reopened = await client.post(url, json={"status": "contacted"}, headers=org.headers)
    assert reopened.status_code == 200
    assert (reopened.json()["temperature"], reopened.json()["lost_reason"]) == ("hot", None)


async def test_stale_if_match_on_status_is_412(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id)
    response = await client.post(
        f"/v1/leads/{lead_id}/status", json={"status": "contacted"}, headers={**org.headers, "If-Match": '"7"'}
    )
    assert response.status_code == 412
