"""Erasure on request keeps the numbers and drops the person; the audit trail names who changed what."""

from __future__ import annotations

import json
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import OrgFixture
from tests.signals.helpers import deliver


async def _dump(sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture) -> str:
    """Every text column of the organization's rows, as one string to search for personal data."""
    async with sessionmaker() as session:
        parts = []
        for table in ("contacts", "contact_identities", "leads", "lead_events", "review_items", "tasks", "tours"):
            rows = await session.execute(
                text(f"SELECT to_jsonb(t) FROM {table} t WHERE org_id = :org"), {"org": org.org_id}
            )
            parts.extend(json.dumps(row[0]) for row in rows)
        inbound = await session.execute(
            text("SELECT encode(body, 'escape'), headers, signal FROM inbound_messages WHERE org_id = :org"),
            {"org": org.org_id},
        )
        parts.extend(json.dumps([row[0], row[1], row[2]]) for row in inbound)
    return "\n".join(parts)


async def test_erasure_removes_the_person_and_keeps_the_metrics(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first = await deliver(
        client,
        sessionmaker,
        org.org_id,
        email="erin.vale@example.com",
        first_name="Erin",
        last_name="Vale",
        phone="+17035550123",
        source="zillow",
        message="My number is 703-555-0123, call me",
    )
    await deliver(client, sessionmaker, org.org_id, email="other@example.com", first_name="Otto", source="website")
    lead_id = first["lead_id"]
    moved = await client.post(f"/v1/leads/{lead_id}/status", json={"status": "toured"}, headers=org.headers)
    assert moved.status_code == 200
    note = await client.post(
        f"/v1/leads/{lead_id}/notes", json={"body": "Erin Vale wants a quiet unit"}, headers=org.headers
    )
    assert note.status_code == 201, note.text
    funnel_before = (await client.get("/v1/metrics/funnel", params={"group_by": "source"}, headers=org.headers)).json()
    contact_id = (await client.get(f"/v1/leads/{lead_id}", headers=org.headers)).json()["contact_id"]
    assert "erin.vale@example.com" in await _dump(sessionmaker, org)

    erased = await client.delete(f"/v1/contacts/{contact_id}", headers=org.headers)
    assert erased.status_code == 200, erased.text
    assert erased.json()["identities_removed"] == 2

    dump = await _dump(sessionmaker, org)
    for personal in ("erin.vale@example.com", "Erin", "Vale", "+17035550123", "703-555-0123", "quiet unit"):
        assert personal not in dump, personal
    assert "other@example.com" in dump  # nobody else is touched
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=org.headers)).json()
    assert (lead["status"], lead["source"], lead["email"], lead["first_name"]) == ("toured", "zillow", None, None)
    timeline = (await client.get(f"/v1/leads/{lead_id}/timeline", headers=org.headers)).json()["items"]
    moves = [event for event in timeline if event["type"] == "status_changed"]
    assert moves and moves[-1]["data"]["to"] == "toured"  # what metrics read survives
    funnel_after = (await client.get("/v1/metrics/funnel", params={"group_by": "source"}, headers=org.headers)).json()
    assert funnel_after["rows"] == funnel_before["rows"]
    # the deleted resource is gone: reads, edits and consent answer 410 naming when; a repeated DELETE is a 200
    for method, path, body in (
        ("GET", f"/v1/contacts/{contact_id}", None),
        ("PATCH", f"/v1/contacts/{contact_id}", {"first_name": "Erin"}),
        ("GET", f"/v1/contacts/{contact_id}/consent", None),
        ("POST", f"/v1/contacts/{contact_id}/consent", {"channel": "sms", "state": "opted_in"}),
    ):
        gone = await client.request(method, path, json=body, headers=org.headers)
        assert gone.status_code == 410, (method, path, gone.text)
        assert gone.headers["content-type"].startswith("application/problem+json")
        assert gone.json()["erased_at"] and gone.json()["type"].endswith("gone")
    assert "Erin" not in await _dump(sessionmaker, org)  # the refused edit wrote nothing
    assert (await client.delete(f"/v1/contacts/{contact_id}", headers=org.headers)).status_code == 200
    # outside the caller's scope (an agent who owns nothing) or organization, erased is a 404 like any other
    agent = await client.post("/v1/api-keys", headers=org.headers, json={"name": "agent", "role": "agent"})
    outsiders = [{"Authorization": f"Bearer {agent.json()['key']}"}, other_org.headers]
    for headers in outsiders:
        for method, path, body in (
            ("GET", f"/v1/contacts/{contact_id}", None),
            ("PATCH", f"/v1/contacts/{contact_id}", {"first_name": "Erin"}),
            ("GET", f"/v1/contacts/{contact_id}/consent", None),
        ):
            hidden = await client.request(method, path, json=body, headers=headers)
            assert hidden.status_code == 404, (method, path, hidden.text)
            assert "erased_at" not in hidden.json()
    # the same renter writing again is a new person: nothing identifies the erased one any more
    again = await deliver(client, sessionmaker, org.org_id, email="erin.vale@example.com", source="zillow")
    assert again["contact_id"] != contact_id


async def test_erasure_needs_a_manager_and_stays_in_the_org(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first = await deliver(client, sessionmaker, org.org_id, email="keep@example.com", source="zillow")
    lead = (await client.get(f"/v1/leads/{first['lead_id']}", headers=org.headers)).json()
    assert (await client.delete(f"/v1/contacts/{lead['contact_id']}", headers=other_org.headers)).status_code == 404
    assert (await client.delete(f"/v1/contacts/{uuid.uuid4()}", headers=org.headers)).status_code == 404
    agent = await client.post("/v1/api-keys", headers=org.headers, json={"name": "agent", "role": "agent"})
    agent_headers = {"Authorization": f"Bearer {agent.json()['key']}"}
    assert (await client.delete(f"/v1/contacts/{lead['contact_id']}", headers=agent_headers)).status_code == 403
    assert "keep@example.com" in await _dump(sessionmaker, org)


async def test_every_write_is_audited_without_values(client: httpx.AsyncClient, org: OrgFixture) -> None:
    created = await client.post(
        "/v1/leads", headers=org.headers, json={"first_name": "Audra", "email": "audra@example.com"}
    )
    assert created.status_code == 201
    lead_id = created.json()["id"]
    patched = await client.patch(
        f"/v1/leads/{lead_id}", headers={**org.headers, "If-Match": '"1"'}, json={"bedrooms": 2}
    )
    assert patched.status_code == 200
    refused = await client.patch(  # a failed write leaves no entry
        f"/v1/leads/{lead_id}", headers={**org.headers, "If-Match": '"1"'}, json={"bedrooms": 3}
    )
    assert refused.status_code == 412
    await client.get(f"/v1/leads/{lead_id}", headers=org.headers)  # reads are not writes

    page = (await client.get("/v1/audit", headers=org.headers)).json()
    operations = [entry["operation"] for entry in page["items"]]
    assert operations == ["PATCH /v1/leads/{lead_id}", "POST /v1/leads"]
    patch_entry = page["items"][0]
    assert patch_entry["target"] == {"lead_id": lead_id}
    assert patch_entry["fields"] == ["bedrooms"]
    assert patch_entry["actor"]["role"] == "admin" and patch_entry["actor"]["key_id"]
    assert "audra@example.com" not in json.dumps(page)
    by_target = (await client.get("/v1/audit", params={"target_id": lead_id}, headers=org.headers)).json()
    assert [entry["operation"] for entry in by_target["items"]] == ["PATCH /v1/leads/{lead_id}"]
