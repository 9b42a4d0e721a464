"""Metrics read what the pipeline did: a lead that toured and was then lost still counts as toured."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import Lead
from tests.conftest import OrgFixture
from tests.signals.helpers import deliver


async def _status(client: httpx.AsyncClient, org: OrgFixture, lead_id: str, status: str, **extra: Any) -> None:
    response = await client.post(f"/v1/leads/{lead_id}/status", json={"status": status, **extra}, headers=org.headers)
    assert response.status_code == 200, response.text


async def test_funnel_by_source_counts_the_furthest_stage_ever_reached(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    zillow = [
        await deliver(client, sessionmaker, org.org_id, email=f"z{i}@example.com", source="zillow") for i in range(4)
    ]
    website = [
        await deliver(
            client, sessionmaker, org.org_id, email=f"w{i}@example.com", source="website", event="tour_request"
        )
        for i in range(2)
    ]
    await _status(client, org, zillow[0]["lead_id"], "toured")
    await _status(client, org, zillow[0]["lead_id"], "lost", lost_reason="rented_elsewhere")
    for step in ("toured", "application_started", "application_submitted", "leased"):
        await _status(client, org, zillow[1]["lead_id"], step)
    await _status(client, org, website[0]["lead_id"], "tour_booked")

    response = await client.get("/v1/metrics/funnel", params={"group_by": "source"}, headers=org.headers)
    assert response.status_code == 200, response.text
    rows = {row["key"]: row for row in response.json()["rows"]}
    assert rows["zillow"]["leads"] == 4
    assert rows["zillow"]["toured"] == 2  # the lost one toured before it was lost
    assert rows["zillow"]["leased"] == 1
    assert rows["zillow"]["lost"] == 1
    assert rows["zillow"]["lead_to_tour_rate"] == 0.5
    assert rows["zillow"]["application_to_lease_rate"] == 1.0
    assert rows["website"]["tour_requested"] == 2
    assert rows["website"]["tour_booked"] == 1
    assert rows["website"]["toured"] == 0
    assert response.json()["totals"]["leads"] == 6

    only_website = await client.get(
        "/v1/metrics/funnel", params={"source": "website", "group_by": "none"}, headers=org.headers
    )
    assert [row["leads"] for row in only_website.json()["rows"]] == [2]


async def test_speed_to_lead_measures_the_first_response(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    answered = await deliver(client, sessionmaker, org.org_id, email="fast@example.com")
    await deliver(client, sessionmaker, org.org_id, email="waiting@example.com")
    async with sessionmaker() as session, session.begin():  # the renter wrote two minutes ago
        await session.execute(
            update(Lead)
            .where(Lead.id == uuid.UUID(answered["lead_id"]))
            .values(created_at=datetime.now(UTC) - timedelta(seconds=120))
        )
    logged = await client.post(
        f"/v1/leads/{answered['lead_id']}/activities",
        json={"kind": "call", "direction": "outbound", "outcome": "talked"},
        headers=org.headers,
    )
    assert logged.status_code in (200, 201), logged.text
    body = (await client.get("/v1/metrics/speed-to-lead", headers=org.headers)).json()
    [row] = body["rows"]
    assert (row["leads"], row["responded"], row["awaiting_response"], row["within_5_minutes"]) == (2, 1, 1, 1)
    assert 100 <= row["median_seconds"] <= 140


async def test_identity_counts_duplicates_prevented_and_answers_304_when_unchanged(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await deliver(client, sessionmaker, org.org_id, email="dup@example.com", phone="(703) 868-3162")
    await deliver(client, sessionmaker, org.org_id, email="DUP@example.com")
    await deliver(client, sessionmaker, org.org_id, phone="703.868.3162", event="missed_call", channel="phone")
    window = {
        "from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }
    first = await client.get("/v1/metrics/identity", params=window, headers=org.headers)
    assert first.status_code == 200
    totals = first.json()["totals"]
    assert (totals["signals"], totals["duplicates_prevented"], totals["contacts_created"]) == (3, 2, 1)
    etag = first.headers["etag"]
    again = await client.get(
        "/v1/metrics/identity",
        params=window,
        headers={**org.headers, "If-None-Match": etag},
    )
    assert again.status_code == 304
    await deliver(client, sessionmaker, org.org_id, email="dup@example.com")
    changed = await client.get(
        "/v1/metrics/identity",
        params=window,
        headers={**org.headers, "If-None-Match": etag},
    )
    assert changed.status_code == 200
    assert changed.json()["totals"]["duplicates_prevented"] == 3


async def test_a_backwards_window_is_a_field_error(client: httpx.AsyncClient, org: OrgFixture) -> None:
    response = await client.get(
        "/v1/metrics/funnel", params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, headers=org.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.from"


async def test_every_grouping_answers_with_its_keys(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    prop = (await client.post("/v1/properties", json={"name": "Grouped"}, headers=org.headers)).json()["id"]
    await deliver(client, sessionmaker, org.org_id, email="g1@example.com", property_id=uuid.UUID(prop))
    await deliver(client, sessionmaker, org.org_id, email="g2@example.com")
    expected = {
        "source": {"zillow"},
        "property": {prop, "none"},
        "owner": {"unassigned"},
        "none": {"all"},
    }
    for group_by, keys in expected.items():
        for path in ("/v1/metrics/funnel", "/v1/metrics/speed-to-lead"):
            response = await client.get(path, params={"group_by": group_by}, headers=org.headers)
            assert response.status_code == 200, (path, group_by, response.text)
            assert {row["key"] for row in response.json()["rows"]} == keys, (path, group_by)
    weeks = (await client.get("/v1/metrics/funnel", params={"group_by": "week"}, headers=org.headers)).json()["rows"]
    assert [row["leads"] for row in weeks] == [2]
    assert weeks[0]["key"].startswith(str(datetime.now(UTC).isocalendar().year))
