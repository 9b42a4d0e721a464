"""Signed event webhooks and the pull stream, end to end: API → outbox → publisher → local receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import standardwebhooks.webhooks as swh
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.webhooks.jobs import deliver_webhooks, publish_events
from shared.clock import FakeClock
from shared.config import Settings
from tests.conftest import OrgFixture
from tests.webhooks.receiver import Receiver


def job_ctx(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    return {"settings": settings, "sessionmaker": sessionmaker, "redis": None}


async def subscribe(client: httpx.AsyncClient, org: OrgFixture, url: str, events: list[str]) -> dict[str, Any]:
    response = await client.post("/v1/webhooks", json={"url": url, "events": events}, headers=org.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_lead(client: httpx.AsyncClient, org: OrgFixture, **fields: Any) -> dict[str, Any]:
    body = {"first_name": "Lena", "last_name": "Park", "email": "lena@example.com", **fields}
    response = await client.post("/v1/leads", json=body, headers=org.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def pump(ctx: dict[str, Any]) -> None:
    await publish_events(ctx)
    await deliver_webhooks(ctx)


@pytest.fixture
def library_clock(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> FakeClock:
    """The Standard Webhooks library checks the timestamp against its own now(): make that our clock."""

    class ClockDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> ClockDatetime:  # type: ignore[override]
            current = clock.now()
            return cls.fromtimestamp(current.timestamp(), tz or UTC)

    monkeypatch.setattr(swh, "datetime", ClockDatetime)
    return clock


async def test_lead_created_arrives_signed_under_the_standard_webhooks_algorithm(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    library_clock: FakeClock,
) -> None:
    async with Receiver() as receiver:
        endpoint = await subscribe(client, org, receiver.url, ["lead.created"])
        assert endpoint["secret"].startswith("whsec_")
        shown = await client.get(f"/v1/webhooks/{endpoint['id']}", headers=org.headers)
        assert "secret" not in shown.json()
        lead = await create_lead(client, org)
        await pump(job_ctx(settings, sessionmaker))

    assert len(receiver.received) == 1
    request = receiver.received[0]
    payload = swh.Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "lead.created"
    assert payload["version"] == 1
    assert payload["data"]["lead_id"] == lead["id"]
    assert payload["data"]["lead"]["email"] == "lena@example.com"
    assert request.headers["webhook-id"] == f"msg_{payload['id'].replace('-', '')}"
    with pytest.raises(swh.WebhookVerificationError):
        swh.Webhook(endpoint["secret"]).verify(request.body.replace(b"Lena", b"Lina"), request.headers)


async def test_a_failing_receiver_gets_the_event_on_the_third_try_in_order_per_lead(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    ctx = job_ctx(settings, sessionmaker)
    async with Receiver(statuses=[500, 500]) as receiver:
        endpoint = await subscribe(client, org, receiver.url, ["lead.created", "lead.updated"])
        lead = await create_lead(client, org)
        await pump(ctx)
        assert [r.headers["webhook-id"] for r in receiver.received] and len(receiver.received) == 1
        # the next event for the same lead happens while the first is still failing
        etag = (await client.get(f"/v1/leads/{lead['id']}", headers=org.headers)).headers["etag"]
        patched = await client.patch(
            f"/v1/leads/{lead['id']}", json={"bedrooms": 2}, headers={**org.headers, "If-Match": etag}
        )
        assert patched.status_code == 200, patched.text
        await pump(ctx)
        assert len(receiver.received) == 1  # held back: lead.updated must not overtake lead.created
        clock.advance(seconds=5)
        await pump(ctx)
        assert len(receiver.received) == 2
        await pump(ctx)
        assert len(receiver.received) == 2  # not due yet (5 min backoff)
        clock.advance(minutes=5)
        await pump(ctx)

    bodies = [json.loads(r.body) for r in receiver.received]
    assert [b["type"] for b in bodies] == ["lead.created", "lead.created", "lead.created", "lead.updated"]
    assert len({r.headers["webhook-id"] for r in receiver.received[:3]}) == 1  # one message, retried
    assert bodies[3]["seq"] > bodies[2]["seq"]
    log = (await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=org.headers)).json()["items"]
    by_type = {item["event_type"]: item for item in log}
    assert by_type["lead.created"]["status"] == "succeeded"
    assert by_type["lead.created"]["attempts"] == 3
    assert [entry["status_code"] for entry in by_type["lead.created"]["log"]] == [500, 500, 200]
    assert by_type["lead.updated"]["status"] == "succeeded"


async def test_the_pull_stream_carries_the_same_events_as_the_webhooks(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    ctx = job_ctx(settings, sessionmaker)
    every = (await client.get("/v1/webhooks/event-types", headers=org.headers)).json()
    async with Receiver() as receiver:
        await subscribe(client, org, receiver.url, every)
        lead = await create_lead(client, org)
        status = await client.post(f"/v1/leads/{lead['id']}/status", json={"status": "contacted"}, headers=org.headers)
        assert status.status_code == 200, status.text
        await create_lead(client, org, email="sam@example.com", first_name="Sam")
        await pump(ctx)

    pushed = [json.loads(r.body) for r in receiver.received]
    page = (await client.get("/v1/events", headers=org.headers)).json()
    pulled = page["items"]
    assert [e["type"] for e in pulled] == ["lead.created", "lead.status_changed", "lead.created"]
    assert [e["seq"] for e in pulled] == [1, 2, 3]
    assert sorted(pushed, key=lambda e: e["seq"]) == pulled
    assert page["next_cursor"] == "3"
    again = (await client.get("/v1/events", params={"after": "2"}, headers=org.headers)).json()
    assert [e["seq"] for e in again["items"]] == [3]
    empty = (await client.get("/v1/events", params={"after": "3"}, headers=org.headers)).json()
    assert empty == {"items": [], "next_cursor": "3"}


async def test_endpoint_that_keeps_failing_is_disabled_and_replay_sends_again(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    ctx = job_ctx(settings, sessionmaker)
    async with Receiver(statuses=[503] * 50) as receiver:
        endpoint = await subscribe(client, org, receiver.url, ["lead.created"])
        await create_lead(client, org)
        await pump(ctx)
        for _ in range(12):
            clock.advance(hours=3)
            await pump(ctx)
        attempts = len(receiver.received)
        shown = (await client.get(f"/v1/webhooks/{endpoint['id']}", headers=org.headers)).json()
        assert shown["enabled"] is False and "every delivery failed" in shown["disabled_reason"]
        log = (await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=org.headers)).json()
        assert log["items"][0]["status"] == "failed"
        events = await client.get("/v1/events", params={"type": "webhook_endpoint.disabled"}, headers=org.headers)
        assert events.json()["items"][0]["data"]["endpoint"]["id"] == endpoint["id"]

        receiver.statuses.clear()
        enabled = await client.patch(f"/v1/webhooks/{endpoint['id']}", json={"enabled": True}, headers=org.headers)
        assert enabled.json()["enabled"] is True
        delivery_id = log["items"][0]["id"]
        replay = await client.post(
            f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery_id}/replay", headers=org.headers
        )
        assert replay.status_code == 202
        await pump(ctx)
        assert len(receiver.received) == attempts + 1
        assert receiver.received[-1].headers["webhook-id"] == receiver.received[0].headers["webhook-id"]


async def test_secret_rotation_signs_with_both_secrets_during_the_grace_period(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    library_clock: FakeClock,
) -> None:
    async with Receiver() as receiver:
        endpoint = await subscribe(client, org, receiver.url, ["lead.created"])
        rotated = (await client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=org.headers)).json()
        assert rotated["secret"] != endpoint["secret"]
        await create_lead(client, org)
        await pump(job_ctx(settings, sessionmaker))
    request = receiver.received[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], rotated["secret"]):
        swh.Webhook(secret).verify(request.body, request.headers)


async def test_webhooks_are_scoped_and_validated(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture
) -> None:
    bad = await client.post("/v1/webhooks", json={"url": "ftp://x", "events": ["lead.eaten"]}, headers=org.headers)
    assert bad.status_code == 422
    fields = {error["field"] for error in bad.json()["errors"]}
    assert any("url" in f for f in fields) and any("events" in f for f in fields)
    endpoint = await subscribe(client, org, "https://example.com/hook", ["lead.created"])
    assert (await client.get(f"/v1/webhooks/{endpoint['id']}", headers=other_org.headers)).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{endpoint['id']}", headers=org.headers)).status_code == 204
    assert (await client.get(f"/v1/webhooks/{endpoint['id']}", headers=org.headers)).status_code == 404
    assert (await client.get("/v1/events", params={"after": "x"}, headers=org.headers)).status_code == 422


async def test_a_transaction_that_commits_late_is_numbered_after_what_was_published(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    """The cursor is gap-free: a row written first but committed last never appears below a read position."""
    from sqlalchemy import select

    from services.api.leads.events import add_event
    from shared.enums import EventType
    from shared.models import Lead

    ctx = job_ctx(settings, sessionmaker)
    first = await create_lead(client, org)
    await publish_events(ctx)
    async with sessionmaker() as slow:
        async with slow.begin():
            lead = await slow.scalar(select(Lead).where(Lead.id == first["id"]))
            assert lead is not None
            add_event(slow, lead, EventType.fields_updated, data={"fields": {"bedrooms": {"to": 3}}})
            await slow.flush()  # inserted (its position is taken) but not committed
            await create_lead(client, org, email="sam@example.com", first_name="Sam")
            await publish_events(ctx)
            page = (await client.get("/v1/events", headers=org.headers)).json()
            assert [e["type"] for e in page["items"]] == ["lead.created", "lead.created"]
            cursor = page["next_cursor"]
        await publish_events(ctx)
    later = (await client.get("/v1/events", params={"after": cursor}, headers=org.headers)).json()
    assert [(e["seq"], e["type"]) for e in later["items"]] == [(3, "lead.updated")]


async def test_endpoint_secrets_are_encrypted_at_rest(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from sqlalchemy import text

    endpoint = await subscribe(client, org, "https://example.com/hook", ["lead.created"])
    async with sessionmaker() as session:
        stored = await session.scalar(
            text("SELECT secret FROM webhook_endpoints WHERE id = :id"), {"id": endpoint["id"]}
        )
    assert stored and not stored.startswith("whsec_") and endpoint["secret"] not in stored
