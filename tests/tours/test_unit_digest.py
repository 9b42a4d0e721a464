"""The daily unit digest, end to end: the cron decides one outbox row per renter and local morning, the send job
mails it through a local SMTP sink, a twin run sends nothing more, and consent, pause, quiet hours and the
stop link hold."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.messaging.consent import record_consent
from services.api.messaging.jobs import send_message
from services.api.units.digest_job import send_unit_digests, unit_digests
from shared.clock import FakeClock
from shared.config import Settings
from shared.models import Lead, OutboundMessage
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads
from tests.messaging.conftest import smtp, use_smtp  # noqa: F401  (the SMTP sink fixture)
from tests.messaging.fakes import SmtpSink
from tests.tours.helpers import make_property

SessionMaker = async_sessionmaker[AsyncSession]
NY = "America/New_York"


async def _plan(client: httpx.AsyncClient, org: OrgFixture, property_id: str, **values: object) -> str:
    body = {"name": "Two", "bedrooms": 2, "rent_min": 1500, **values}
    response = await client.post(f"/v1/properties/{property_id}/floor-plans", json=body, headers=org.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _unit(client: httpx.AsyncClient, org: OrgFixture, plan_id: str, number: str) -> None:
    response = await client.post("/v1/units", json={"floor_plan_id": plan_id, "number": number}, headers=org.headers)
    assert response.status_code == 201, response.text


async def _digests(sessionmaker: SessionMaker, lead_ids: list[uuid.UUID]) -> list[OutboundMessage]:
    async with sessionmaker() as session:
        query = (
            select(OutboundMessage)
            .where(OutboundMessage.lead_id.in_(lead_ids), OutboundMessage.template == "unit_digest")
            .order_by(OutboundMessage.created_at)
        )
        return list((await session.scalars(query)).all())


def _ctx(settings: Settings, sessionmaker: SessionMaker) -> dict[str, Any]:
    return {"settings": settings, "sessionmaker": sessionmaker, "redis": None, "job_try": 1}


async def test_one_digest_a_morning_with_what_is_new_since_the_last_one_sent_once_and_stoppable(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: SessionMaker,
    smtp: SmtpSink,  # noqa: F811
    clock: FakeClock,
) -> None:
    ctx = _ctx(settings, sessionmaker)
    await use_smtp(client, org, smtp.port)
    property_id = await make_property(client, org, NY)
    two = await _plan(client, org, property_id)
    studio = await _plan(client, org, property_id, name="Studio", bedrooms=0, rent_min=900)
    wants = {"property_id": uuid.UUID(property_id), "bedrooms": 2, "budget_max": 1800}
    [renter] = await insert_leads(sessionmaker, org.org_id, start=clock.now(), unit_digest_opt_in=True, **wants)
    [silent] = await insert_leads(sessionmaker, org.org_id, start=clock.now(), **wants)  # did not opt in
    [lost] = await insert_leads(
        sessionmaker, org.org_id, start=clock.now(), unit_digest_opt_in=True, status="lost", **wants
    )
    [picky] = await insert_leads(
        sessionmaker, org.org_id, start=clock.now(), unit_digest_opt_in=True, **{**wants, "bedrooms": 3}
    )
    everyone = [renter, silent, lost, picky]
    await _unit(client, org, two, "101")
    await _unit(client, org, studio, "S1")

    await send_unit_digests(ctx)  # 14:00 in New York: not the morning
    assert await _digests(sessionmaker, everyone) == []

    clock.set(datetime(2026, 6, 3, 13, 7, tzinfo=UTC))  # 09:07 in New York: the cron decides on quarter hours
    assert await unit_digests(ctx) == 0
    assert await _digests(sessionmaker, everyone) == []
    clock.set(datetime(2026, 6, 3, 13, 30, tzinfo=UTC))  # 09:30 in New York
    # twin runs at once (two workers), then again (arq may run a cron twice): one message
    await asyncio.gather(unit_digests(ctx), unit_digests(ctx))  # (counts include other tests' organizations)
    await send_unit_digests(ctx)
    [digest] = await _digests(sessionmaker, everyone)
    assert (digest.lead_id, digest.channel, digest.status, digest.kind) == (renter, "email", "queued", "proactive")
    assert digest.idempotency_key.endswith(":2026-06-03")
    assert "- Unit 101: Two, 2 bd, $1,500/mo, available now" in digest.body
    assert "Unit S1" not in digest.body and "/v1/unit-digest/stop/" in digest.body

    assert await send_message(ctx, str(digest.id)) == "sent"
    await send_message(ctx, str(digest.id))  # the send job again (arq may): settled, not resent
    [mail] = smtp.to(digest.to_address)
    assert mail["Subject"] == "New homes that match your search: Maple Court"
    content = mail.get_content()
    assert "Unit 101" in content and mail["List-Unsubscribe"].strip("<>") in content

    clock.set(datetime(2026, 6, 4, 13, 30, tzinfo=UTC))  # next morning, nothing new: no message
    await send_unit_digests(ctx)
    assert len(await _digests(sessionmaker, everyone)) == 1
    clock.set(datetime(2026, 6, 4, 14, 50, tzinfo=UTC))
    await _unit(client, org, two, "102")  # new later that morning: told the same morning, only the new one
    clock.set(datetime(2026, 6, 4, 15, 0, tzinfo=UTC))
    await send_unit_digests(ctx)
    _first, second = await _digests(sessionmaker, everyone)
    assert "Unit 102" in second.body and "Unit 101" not in second.body
    assert second.idempotency_key.endswith(":2026-06-04")

    link = second.body.split("/v1/unit-digest/stop/")[1].split()[0]
    assert (await client.get(f"/v1/unit-digest/stop/{link}x")).status_code == 404
    stopped = await client.get(f"/v1/unit-digest/stop/{link}")
    assert stopped.status_code == 200 and "no more daily unit updates" in stopped.text
    async with sessionmaker() as session:
        assert (await session.get_one(Lead, renter)).unit_digest_opt_in is False
    clock.set(datetime(2026, 6, 5, 13, 30, tzinfo=UTC))
    await _unit(client, org, two, "103")
    await send_unit_digests(ctx)
    assert len(await _digests(sessionmaker, everyone)) == 2


async def test_consent_pause_and_quiet_hours_are_the_messaging_layers_decisions(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    ctx = _ctx(settings, sessionmaker)
    property_id = await make_property(client, org, NY)
    two = await _plan(client, org, property_id)
    allowed_from_ten = {day: [{"start": "10:00", "end": "20:00"}] for day in ("mon", "tue", "wed", "thu", "fri")}
    response = await client.put("/v1/messaging/settings", json={"quiet_hours": allowed_from_ten}, headers=org.headers)
    assert response.status_code == 200, response.text
    wants = {"property_id": uuid.UUID(property_id), "bedrooms": 2, "unit_digest_opt_in": True}
    texted, silenced, paused = await insert_leads(sessionmaker, org.org_id, 3, start=clock.now(), **wants)
    async with sessionmaker() as session, session.begin():
        leads = {lead.id: lead for lead in await session.scalars(select(Lead).where(Lead.id.in_([texted, silenced])))}
        for lead_id, channels in ((texted, ["email"]), (silenced, ["email", "sms"])):
            for channel in channels:
                await record_consent(
                    session,
                    org.org_id,
                    channel=channel,
                    state="opted_out",
                    source="agent",
                    contact_id=leads[lead_id].contact_id,
                )
        await session.execute(
            update(Lead).where(Lead.id == paused).values(automation_paused_at=clock.now(), automation_paused_reason="x")
        )
    await _unit(client, org, two, "201")

    clock.set(datetime(2026, 6, 3, 13, 30, tzinfo=UTC))  # Wednesday 09:30 in New York: still quiet here
    await send_unit_digests(ctx)
    assert await _digests(sessionmaker, [texted, silenced, paused]) == []

    clock.set(datetime(2026, 6, 3, 14, 15, tzinfo=UTC))  # 10:15: allowed
    await send_unit_digests(ctx)
    by_lead = {m.lead_id: m for m in await _digests(sessionmaker, [texted, silenced, paused])}
    # email unsubscribed: the digest goes by SMS, shortened, with STOP
    assert (by_lead[texted].channel, by_lead[texted].status) == ("sms", "queued")
    assert "Unit 201: Two, 2 bd, $1,500/mo, available now" in by_lead[texted].body
    assert "Reply STOP" in by_lead[texted].body
    # opted out everywhere: decided and recorded as suppressed, never sent
    assert (by_lead[silenced].status, by_lead[silenced].reason) == ("suppressed", "opted_out")
    assert by_lead[paused].status == "suppressed" and by_lead[paused].reason.startswith("automation_paused")
