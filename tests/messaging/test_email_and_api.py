"""Email over SMTP (aiosmtpd sink): Reply-To, threading back through email intake, one-click unsubscribe;
templates, providers' secrets, HELP, a person's send in quiet hours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FakeClock
from shared.config import Settings
from shared.models import Lead
from tests.conftest import OrgFixture
from tests.messaging.conftest import use_smtp, use_twilio
from tests.messaging.fakes import AUTH_TOKEN, FakeTwilio, SmtpSink
from tests.messaging.helpers import follow_up_steps, messages_of, post_twilio, run_worker, setup_org, sms
from tests.signals.helpers import envelope, post_signal


async def _property_id(client: httpx.AsyncClient, org: OrgFixture) -> str:
    return str((await client.get("/v1/properties", headers=org.headers)).json()["items"][0]["id"])


async def test_email_reply_to_threads_back_to_the_same_lead_and_unsubscribe_stops_email(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    msg_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    smtp: SmtpSink,
    clock: FakeClock,
) -> None:
    await setup_org(client, org)
    await use_smtp(client, org, smtp.port)
    settings_put = await client.put(
        "/v1/messaging/settings", json={"inbound_email": "leads@in.acme.example"}, headers=org.headers
    )
    assert settings_put.status_code == 200, settings_put.text
    property_id = uuid.UUID(await _property_id(client, org))
    first = await post_signal(
        client, envelope(org.org_id, email="lena@example.com", first_name="Lena", property_id=property_id)
    )
    await run_worker(msg_settings, service_api)
    [mail] = smtp.to("lena@example.com")
    assert mail["Subject"] == "Your inquiry about Maple Court"
    assert mail["Reply-To"] == "leads@in.acme.example"
    assert mail["From"] == "Acme Leasing <leasing@acme.example>"
    [ack] = [m for m in await messages_of(sessionmaker, first["lead_id"]) if m.template == "ils_reply"]
    assert mail["Message-ID"] == f"<{ack.id}@acme.example>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mail["List-Unsubscribe"].strip("<>")
    assert link in mail.get_content() and "Hi Lena" in mail.get_content()

    # the renter answers from her mail client: through email intake, onto the same lead (not a new one)
    reply = (
        "From: Lena Park <lena@example.com>\r\nTo: leads@in.acme.example\r\n"
        f"Subject: Re: {mail['Subject']}\r\nMessage-ID: <reply-{uuid.uuid4().hex}@example.com>\r\n"
        f"In-Reply-To: {mail['Message-ID']}\r\nReferences: {mail['Message-ID']}\r\n"
        "Date: Tue, 02 Jun 2026 18:05:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Saturday at 11 works for me.\r\n\r\nOn Tue, Jun 2, 2026 Acme Leasing wrote:\r\n> Hi Lena\r\n"
    ).encode()
    response = await client.post(
        f"/v1/intake/{org.intake_key}/email", content=reply, headers={"Content-Type": "message/rfc822"}
    )
    assert response.status_code == 202, response.text
    await run_worker(msg_settings, service_api)
    async with sessionmaker() as session:
        leads = list(await session.scalars(select(Lead).where(Lead.org_id == org.org_id)))
    assert [str(lead.id) for lead in leads] == [first["lead_id"]]
    [follow_up] = await follow_up_steps(sessionmaker, first["lead_id"])  # the engine's step a day later
    assert (follow_up.status, follow_up.reason) == ("suppressed", "renter_replied")

    # one-click unsubscribe (RFC 8058 POST): the email channel is out, the next email is suppressed
    path = link.removeprefix("https://guestcard.test")
    assert (await client.post(path, data={"List-Unsubscribe": "One-Click"})).status_code == 204
    assert (await client.get(path)).status_code == 200  # a second click is harmless
    consent = (await client.get(f"/v1/contacts/{first['contact_id']}/consent", headers=org.headers)).json()
    assert consent["email"] == "opted_out"
    assert [(h["channel"], h["source"]) for h in consent["history"]] == [("email", "unsubscribe_link")]
    sent = await client.post(
        f"/v1/leads/{first['lead_id']}/messages",
        json={"channel": "email", "subject": "Tour", "body": "See you Saturday"},
        headers=org.headers,
    )
    assert (sent.json()["status"], sent.json()["reason"]) == ("suppressed", "opted_out")
    assert (await client.get(path.replace("/v1/unsubscribe/", "/v1/unsubscribe/x"))).status_code == 404


async def test_templates_variables_preview_and_segments(
    client: httpx.AsyncClient, org: OrgFixture, clock: FakeClock
) -> None:
    bad = await client.post(
        "/v1/templates",
        json={"key": "tour_confirm", "channel": "sms", "body": "Hi {{first_name}}, see you {{tour_tme}}"},
        headers=org.headers,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"field": "body.body", "message": "unknown variable 'tour_tme'"}]
    created = await client.post(
        "/v1/templates",
        json={"key": "tour_confirm", "channel": "sms", "body": "Hi {{first_name}}, see you at {{ tour_time }}!"},
        headers=org.headers,
    )
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]
    again = await client.post(
        "/v1/templates",
        json={"key": "tour_confirm", "channel": "sms", "body": "dup"},
        headers=org.headers,
    )
    assert again.status_code == 409
    preview = await client.post(
        f"/v1/templates/{template_id}/preview",
        json={"variables": {"first_name": "Lena", "tour_time": "Sat 11:00"}},
        headers=org.headers,
    )
    assert preview.json() | {} == {
        "channel": "sms",
        "subject": None,
        "body": "Hi Lena, see you at Sat 11:00!",
        "variables": ["first_name", "tour_time"],
        "encoding": "gsm7",
        "length": 30,
        "segments": 1,
    }
    emoji = await client.post(
        f"/v1/templates/{template_id}/preview", json={"variables": {"first_name": "Zoë 🏡" * 10}}, headers=org.headers
    )
    assert (emoji.json()["encoding"], emoji.json()["segments"]) == ("ucs2", 2)
    unknown = await client.post(
        f"/v1/templates/{template_id}/preview", json={"variables": {"nickname": "L"}}, headers=org.headers
    )
    assert unknown.status_code == 422 and "nickname" in unknown.json()["detail"]
    too_long = await client.patch(f"/v1/templates/{template_id}", json={"body": "a" * 1531}, headers=org.headers)
    assert too_long.status_code == 422
    listed = (await client.get("/v1/templates", headers=org.headers)).json()
    assert [t["key"] for t in listed["items"]] == ["tour_confirm"] and "application_link" in listed["variables"]


async def test_provider_secrets_are_never_returned(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    await use_twilio(client, org)
    await use_smtp(client, org, 2525)
    by_channel = {}
    for channel in ("sms", "email"):
        listed = await client.get(f"/v1/integrations/messaging/{channel}", headers=org.headers)
        assert AUTH_TOKEN not in listed.text and "smtp-secret" not in listed.text
        by_channel[channel] = listed.json()
    assert by_channel["sms"]["secrets_set"] == ["auth_token"] and by_channel["sms"]["provider"] == "twilio"
    assert by_channel["email"]["secrets_set"] == ["password"]
    async with sessionmaker() as session:  # encrypted at rest
        stored = list(
            await session.scalars(
                text("SELECT secrets FROM messaging_providers WHERE org_id = :org"), {"org": org.org_id}
            )
        )
    assert len(stored) == 2 and not any(AUTH_TOKEN in s or "smtp-secret" in s for s in stored)
    wrong = await client.put(
        "/v1/integrations/messaging/sms",
        json={"provider": "smtp", "host": "x", "from_email": "a@b.c"},
        headers=org.headers,
    )
    assert wrong.status_code == 422


async def test_help_gets_the_org_help_text_and_a_person_may_send_in_quiet_hours_with_a_warning(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    msg_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    clock: FakeClock,
) -> None:
    await setup_org(client, org)
    await use_twilio(client, org)
    await client.put(
        "/v1/messaging/settings",
        json={"help_text": "Acme Leasing: call 512-555-0100. Reply STOP to opt out."},
        headers=org.headers,
    )
    phone = "+12065550198"
    first = await post_signal(client, envelope(org.org_id, phone=phone, email=None, event="call", channel="phone"))
    await post_twilio(client, org, "twilio/sms", sms(phone, "help"))
    await run_worker(msg_settings, service_api)
    assert [m["body"] for m in twilio.accepted(phone)] == ["Acme Leasing: call 512-555-0100. Reply STOP to opt out."]

    clock.set(datetime(2026, 6, 3, 3, 30, tzinfo=UTC))  # 23:30 in New York
    response = await client.post(
        f"/v1/leads/{first['lead_id']}/messages", json={"body": "Sorry for the late text!"}, headers=org.headers
    )
    body: dict[str, Any] = response.json()
    assert (body["status"], body["warning"], body["channel"], body["kind"]) == ("queued", "quiet_hours", "sms", "human")
    await run_worker(msg_settings, service_api)
    assert twilio.accepted(phone)[-1]["body"] == "Sorry for the late text!"
    lead = (await client.get(f"/v1/leads/{first['lead_id']}", headers=org.headers)).json()
    assert lead["status"] == "contacted"
