"""Invitations reach the renter, notification preferences, consent by an agent and by import, the record
provider, and another organization's lead is a 404."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FakeClock
from shared.config import Settings
from shared.models import OutboundMessage
from tests.conftest import OrgFixture
from tests.messaging.conftest import use_smtp
from tests.messaging.fakes import SmtpSink
from tests.messaging.helpers import messages_of, run_worker
from tests.signals.helpers import envelope, post_signal


async def test_invite_to_apply_emails_the_renter(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    msg_settings: Settings,
    smtp: SmtpSink,
    clock: FakeClock,
) -> None:
    await use_smtp(client, org, smtp.port)
    response = await client.post(
        "/v1/leads/invitations",
        json={"emails": ["applicant@example.com"], "message": "Here is the link to apply: https://apply.example/x"},
        headers=org.headers,
    )
    assert response.status_code == 200, response.text
    await run_worker(msg_settings, service_api)
    [mail] = smtp.to("applicant@example.com")
    assert "https://apply.example/x" in mail.get_content()
    assert mail["Subject"].startswith("You're invited to apply")


async def test_notification_preferences_choose_feed_and_email(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    msg_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    smtp: SmtpSink,
    clock: FakeClock,
) -> None:
    await use_smtp(client, org, smtp.port)
    put = await client.put(
        "/v1/notifications/preferences",
        json={"items": [{"kind": "question", "feed": True, "email": False}, {"kind": "new_lead", "feed": False}]},
        headers=org.headers,
    )
    assert put.status_code == 200 and len(put.json()["items"]) == 2
    await post_signal(
        client, envelope(org.org_id, email="q@example.com", event="question", message="Is parking included?")
    )
    await run_worker(msg_settings, service_api)
    feed = (await client.get("/v1/notifications", headers=org.headers)).json()["items"]
    assert [n["kind"] for n in feed] == ["question"]
    admin_mail = [m["Subject"] for m in smtp.to(f"admin@{org.org_id.hex[:8]}.invalid")]
    assert len(admin_mail) == 1 and admin_mail[0].startswith("New lead")  # question: feed only; new lead: email only
    assert (await client.post("/v1/notifications/read-all", headers=org.headers)).status_code == 204
    assert (await client.get("/v1/notifications", headers=org.headers)).json()["unread"] == 0


async def test_consent_by_agent_and_import_and_the_record_provider(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    msg_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    first = await post_signal(client, envelope(org.org_id, email="agent@example.com", phone="+12065550180"))
    await run_worker(msg_settings, service_api)
    [ack] = [m for m in await messages_of(sessionmaker, first["lead_id"]) if m.template == "ils_reply"]
    assert (ack.channel, ack.status, ack.provider) == ("sms", "sent", "record")  # no provider set: record
    changed = await client.post(
        f"/v1/contacts/{first['contact_id']}/consent",
        json={"channel": "sms", "state": "opted_out", "note": "asked on the phone"},
        headers=org.headers,
    )
    assert changed.status_code == 200 and changed.json()["sms"] == "opted_out"
    assert changed.json()["history"][0]["source"] == "agent"
    imported = await client.post(
        "/v1/consent/import",
        json={
            "rows": [
                {"channel": "email", "state": "opted_out", "address": "AGENT@example.com"},
                {"channel": "sms", "state": "opted_out", "address": "(206) 555-0181"},
                {"channel": "sms", "state": "opted_out", "address": "not a phone"},
            ]
        },
        headers=org.headers,
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["recorded"] == 2 and imported.json()["rejected"][0]["row"] == 2
    consent = (await client.get(f"/v1/contacts/{first['contact_id']}/consent", headers=org.headers)).json()
    assert (consent["sms"], consent["email"]) == ("opted_out", "opted_out")
    sent = await client.post(f"/v1/leads/{first['lead_id']}/messages", json={"body": "hi"}, headers=org.headers)
    assert (sent.json()["status"], sent.json()["reason"]) == ("suppressed", "opted_out")
    # the imported number binds when it becomes a renter: the acknowledgement falls back to nothing
    second = await post_signal(client, envelope(org.org_id, email=None, phone="+12065550181"))
    async with sessionmaker() as session:
        rows = list(await session.scalars(select(OutboundMessage).where(OutboundMessage.lead_id == second["lead_id"])))
    assert {(m.template, m.status, m.reason) for m in rows if m.user_id is None} >= {
        ("ils_reply", "suppressed", "opted_out")
    }


async def test_another_organizations_lead_messages_are_404(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, clock: FakeClock
) -> None:
    lead_id = (await post_signal(client, envelope(org.org_id, email="mine@example.com")))["lead_id"]
    assert (await client.get(f"/v1/leads/{lead_id}/messages", headers=other_org.headers)).status_code == 404
    assert (
        await client.post(f"/v1/leads/{lead_id}/messages", json={"body": "x"}, headers=other_org.headers)
    ).status_code == 404


async def test_erasure_clears_message_texts_and_addresses_but_keeps_states(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    first = await post_signal(client, envelope(org.org_id, email="erase@example.com", phone="+12065550170"))
    erased = await client.delete(f"/v1/contacts/{first['contact_id']}", headers=org.headers)
    assert erased.status_code in (200, 204), erased.text
    rows = await messages_of(sessionmaker, first["lead_id"])
    assert rows and all(m.body == "" and m.to_address is None for m in rows)
    assert {m.status for m in rows} == {"suppressed"}  # the queued acknowledgement and follow-up never go
    feed = (await client.get("/v1/notifications", headers=org.headers)).json()["items"]
    assert all(
        "erase@example.com" not in n["body"] and n["title"] == "(erased)"
        for n in feed
        if n["lead_id"] == first["lead_id"]
    )
