"""People (deactivate → reassign, no hard delete) and SLA escalation as an idempotent cron."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.owners.jobs import escalate_sla
from shared.clock import FakeClock
from shared.config import Settings
from shared.db import make_engine, make_sessionmaker
from tests.conftest import OrgFixture
from tests.owners.helpers import events, job_ctx, lead_row, new_lead, person, property_with_team

SessionMaker = async_sessionmaker[AsyncSession]


async def test_deactivating_an_agent_reassigns_its_open_leads_through_the_strategy(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob, cara = [await person(client, org, name) for name in ("Amy", "Bob", "Cara")]
    property_id = await property_with_team(client, org, [(amy, 1), (bob, 1), (cara, 1)])
    leads = [await new_lead(client, org, property_id) for _ in range(6)]
    amys = [lead_id for lead_id in leads if (await lead_row(sessionmaker, lead_id)).owner_id == amy.id]
    assert len(amys) == 2
    closed = amys[0]
    lost = await client.post(f"/v1/leads/{closed}/status", json={"status": "lost", "lost_reason": "spam"},
                             headers=org.headers)  # fmt: skip
    assert lost.status_code == 200, lost.text

    gone = await client.patch(f"/v1/users/{amy.id}", json={"active": False}, headers=org.headers)
    assert gone.status_code == 200, gone.text
    assert (gone.json()["active"], gone.json()["availability"]) == (False, "inactive")
    moved = await lead_row(sessionmaker, amys[1])
    assert moved.owner_id in {bob.id, cara.id}
    assert (await lead_row(sessionmaker, closed)).owner_id == amy.id  # history keeps its actor
    [reassigned] = [e for e in await events(sessionmaker, amys[1], "owner_assigned") if e.data["from"]]
    assert reassigned.data["from"] == str(amy.id)
    assert reassigned.data["reason"].startswith("Amy was deactivated: round robin weight 1")
    assert (await client.get("/v1/leads", headers=amy.headers)).status_code == 401  # its keys stop
    # no hard delete; the user is still listed
    users = {u["id"]: u for u in (await client.get("/v1/users", headers=org.headers)).json()}
    assert users[str(amy.id)]["availability"] == "inactive"
    # new leads skip the inactive agent
    for _ in range(4):
        assert (await lead_row(sessionmaker, await new_lead(client, org, property_id))).owner_id != amy.id


async def test_reassign_moves_a_leaving_agents_leads_and_people_rules(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    manager = await person(client, org, "Mona", role="manager")
    property_id = await property_with_team(client, org, [(amy, 1), (bob, 1)])
    leads = [await new_lead(client, org, property_id) for _ in range(4)]
    assert (await client.post(f"/v1/users/{amy.id}/reassign", headers=bob.headers)).status_code == 403
    result = await client.post(f"/v1/users/{amy.id}/reassign", headers=manager.headers)
    assert result.status_code == 200 and result.json() == {"assigned": 2, "offered": 0, "pooled": 0}
    assert {(await lead_row(sessionmaker, lead_id)).owner_id for lead_id in leads} == {bob.id}
    # agents change only their own name, phone and away time; managers not roles; admins anything
    assert (await client.patch(f"/v1/users/{bob.id}", json={"name": "X"}, headers=amy.headers)).status_code == 403
    assert (await client.patch(f"/v1/users/{amy.id}", json={"role": "admin"}, headers=amy.headers)).status_code == 403
    mine = await client.patch(f"/v1/users/{amy.id}", json={"mobile_phone": "+15125550100"}, headers=amy.headers)
    assert mine.status_code == 200 and mine.json()["mobile_phone"] == "+15125550100"
    role = await client.patch(f"/v1/users/{amy.id}", json={"role": "manager"}, headers=manager.headers)
    assert role.status_code == 403
    promoted = await client.patch(f"/v1/users/{amy.id}", json={"role": "manager"}, headers=org.headers)
    assert promoted.status_code == 200 and promoted.json()["role"] == "manager"
    clash = await client.patch(f"/v1/users/{amy.id}", json={"email": bob.email}, headers=org.headers)
    assert clash.status_code == 409
    assert (await client.delete(f"/v1/users/{amy.id}", headers=org.headers)).status_code == 405


async def test_an_sla_breach_with_two_workers_running_fires_exactly_once(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: SessionMaker,
    settings: Settings,
    clock: FakeClock,
) -> None:
    amy = await person(client, org, "Amy")
    manager = await person(client, org, "Mona", role="manager")
    property_id = await property_with_team(client, org, [(amy, 1)])
    leads = [await new_lead(client, org, property_id) for _ in range(5)]
    answered = leads[0]
    call = {"kind": "call", "direction": "outbound"}
    assert (await client.post(f"/v1/leads/{answered}/activities", json=call, headers=amy.headers)).status_code == 201

    # two workers, each with its own engine and pool (the test's and a second one), draining at the same moment
    assert settings.database_url
    engines = [make_engine(settings.database_url, pool_size=2)]
    workers = [job_ctx(settings, sessionmaker), job_ctx(settings, make_sessionmaker(engines[0]))]
    try:
        clock.advance(minutes=14)
        await asyncio.gather(*[escalate_sla(ctx) for ctx in workers])
        for lead_id in leads:  # within 15 minutes: nothing yet
            assert await events(sessionmaker, lead_id, "sla_breached") == []
        clock.advance(minutes=2)
        # (the cron is global: other tests' leads may be drained too, so count this test's events)
        await asyncio.gather(*[escalate_sla(ctx) for ctx in workers], *[escalate_sla(ctx) for ctx in workers])
        await asyncio.gather(*[escalate_sla(ctx) for ctx in workers])
    finally:
        for engine in engines:
            await engine.dispose()
    assert await events(sessionmaker, answered, "sla_breached") == []  # a person answered in time
    for lead_id in leads[1:]:
        [breach] = await events(sessionmaker, lead_id, "sla_breached")
        assert breach.data["reason"] == "no human response within 15 minutes (Amy owns it)"
        assert breach.data["notified"] == [str(manager.id)]
        assert breach.data["seconds"] == 16 * 60


async def test_a_restarted_worker_catches_up_and_the_sla_can_reassign(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: SessionMaker,
    settings: Settings,
    clock: FakeClock,
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    property_id = await property_with_team(
        client, org, [(amy, 1), (bob, 1)], strategy="round_robin", sla_minutes=5, sla_reassign=True
    )
    lead_id = await new_lead(client, org, property_id)
    first_owner = (await lead_row(sessionmaker, lead_id)).owner_id
    # the worker is down for two hours; on its first run after the restart the breach still fires, once
    clock.advance(timedelta(hours=2))
    assert settings.database_url
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        ctx = job_ctx(settings, make_sessionmaker(engine))
        assert await escalate_sla(ctx) >= 1
        await escalate_sla(ctx)
    finally:
        await engine.dispose()
    [breach] = await events(sessionmaker, lead_id, "sla_breached")
    assert "within 5 minutes" in breach.data["reason"]
    lead = await lead_row(sessionmaker, lead_id)
    assert lead.owner_id not in (None, first_owner)
    [moved] = [e for e in await events(sessionmaker, lead_id, "owner_assigned") if e.data["from"]]
    assert moved.data["reason"].startswith("SLA breached by ")
