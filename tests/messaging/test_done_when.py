"""Issue #10 "Done when", on the real wire formats: Twilio's REST API served by a local fake at the configured
base URL, an aiosmtpd sink for SMTP, real PostgreSQL and Redis, the real intake endpoints and burst workers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq import Retry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import services.api.messaging.jobs as jobs
from services.api.automation.jobs import drain_scheduled_actions
from services.api.intake.signatures import twilio_signature
from shared.clock import FakeClock
from shared.clock import now as clock_now
from shared.config import Settings
from shared.models import ConsentRecord, Lead, OutboundMessage, ReviewItem
from tests.conftest import OrgFixture
from tests.intake.test_intake_support import PUBLIC_URL
from tests.messaging.conftest import use_smtp, use_twilio
from tests.messaging.fakes import AUTH_TOKEN, FakeTwilio, SmtpSink
from tests.messaging.helpers import (
    follow_up_steps,
    inbound,
    lead_of,
    messages_of,
    missed_call,
    post_twilio,
    run_worker,
    setup_org,
    sms,
)
from tests.signals.helpers import envelope, post_signal

RENTER = "+12065550190"


async def test_missed_call_gets_a_text_back_in_the_same_job_run(
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
    inbound_id = await post_twilio(client, org, "twilio/voice", missed_call(RENTER))

    await run_worker(msg_settings, service_api)  # one burst run: parse, apply, text back

    row = await inbound(sessionmaker, inbound_id)
    assert row.status == "processed" and row.lead_id is not None
    [sent] = twilio.accepted(RENTER)
    assert "missed your call" in sent["body"] and sent["from"] == "+15125550100"
    listed = (await client.get(f"/v1/leads/{row.lead_id}/messages", headers=org.headers)).json()
    [item] = listed["items"]
    assert (item["channel"], item["direction"], item["status"], item["template"], item["kind"]) == (
        "sms",
        "outbound",
        "sent",
        "missed_call_text_back",  # the automation engine's first reply (rule missed_call_text_back)
        "reply",
    )
    assert item["provider_message_id"] == sent["sid"] and item["sent_at"] is not None
    assert sent["status_callback"] == f"{PUBLIC_URL}/v1/messaging/twilio/status/{item['id']}"
    lead = await lead_of(sessionmaker, row.lead_id)
    assert lead.first_automated_response_at is not None and lead.first_human_response_at is None
    assert lead.first_response_at is not None

    # Twilio's StatusCallback: a forged one is 401 and changes nothing, a signed one moves sent → delivered
    callback = sent["status_callback"]
    form = {"MessageSid": sent["sid"], "MessageStatus": "delivered", "AccountSid": sent["account_sid"]}
    forged = await client.post(callback, data=form, headers={"X-Twilio-Signature": "bm9wZQ=="})
    assert forged.status_code == 401
    assert (await messages_of(sessionmaker, row.lead_id))[0].status == "sent"
    signed = await client.post(
        callback, data=form, headers={"X-Twilio-Signature": twilio_signature(callback, form, AUTH_TOKEN)}
    )
    assert signed.status_code == 204, signed.text
    [message] = await messages_of(sessionmaker, row.lead_id)
    assert message.status == "delivered" and message.delivered_at is not None
    timeline = (await client.get(f"/v1/leads/{row.lead_id}/timeline", headers=org.headers)).json()
    kinds = [event["type"] for event in timeline["items"]]
    assert {"message_queued", "message_sent", "message_delivered"} <= set(kinds)


async def test_a_renter_reply_cancels_the_queued_follow_up_with_the_reason(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    msg_settings: Settings,
    clock: FakeClock,
) -> None:
    """The follow-up a day later is the automation engine's sequence step (time is data): the renter's
    answer suppresses it with the reason, and it never reaches the outbox."""
    first = await post_signal(client, envelope(org.org_id, email="reply@example.com", phone="+12065550191"))
    follow_up = await follow_up_steps(sessionmaker, first["lead_id"])
    assert [(s.status, s.due_at) for s in follow_up] == [("pending", clock.now() + timedelta(days=1))]
    clock.advance(hours=2)
    await post_signal(
        client,
        envelope(org.org_id, phone="+12065550191", event="sms_inbound", channel="sms", source="sms", message="Yes!"),
    )
    [cancelled] = await follow_up_steps(sessionmaker, first["lead_id"])
    assert (cancelled.status, cancelled.reason) == ("suppressed", "renter_replied")
    log = (await client.get(f"/v1/leads/{first['lead_id']}/automation-log", headers=org.headers)).json()
    assert any(
        entry["outcome"] == "suppressed"
        and entry["reason"] == "renter_replied"
        and entry["rule_id"] == "inquiry_follow_up"
        for entry in log["items"]
    ), log
    clock.advance(days=2)
    await drain_scheduled_actions({"sessionmaker": sessionmaker, "settings": msg_settings, "redis": None})
    assert [m for m in await messages_of(sessionmaker, first["lead_id"]) if m.template == "follow_up"] == []


async def test_stop_suppresses_every_later_sms_and_start_allows_again(
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
    phone = "+12065550192"
    lead_id = (await post_signal(client, envelope(org.org_id, phone=phone, email="stop@example.com")))["lead_id"]
    await post_twilio(client, org, "twilio/sms", sms(phone, "  stopall "))
    await run_worker(msg_settings, service_api)
    before = len(twilio.accepted(phone))

    for text in ("Can I see it Friday?", "Hello again"):
        response = await client.post(
            f"/v1/leads/{lead_id}/messages", json={"channel": "sms", "body": text}, headers=org.headers
        )
        assert response.status_code == 201, response.text
        assert (response.json()["status"], response.json()["reason"]) == ("suppressed", "opted_out")
    await run_worker(msg_settings, service_api)
    assert len(twilio.accepted(phone)) == before

    await post_twilio(client, org, "twilio/sms", sms(phone, "START"))
    await run_worker(msg_settings, service_api)
    response = await client.post(
        f"/v1/leads/{lead_id}/messages", json={"channel": "sms", "body": "Welcome back"}, headers=org.headers
    )
    assert response.json()["status"] == "queued"
    await run_worker(msg_settings, service_api)
    assert [m["body"] for m in twilio.accepted(phone)][-1] == "Welcome back"

    lead = await lead_of(sessionmaker, lead_id)
    consent = (await client.get(f"/v1/contacts/{lead.contact_id}/consent", headers=org.headers)).json()
    assert consent["sms"] == "opted_in"
    assert [(h["state"], h["source"]) for h in consent["history"]] == [
        ("opted_in", "sms_keyword"),
        ("opted_out", "sms_keyword"),
    ]


async def test_stop_from_an_unknown_number_records_consent_and_creates_no_lead(
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
    stranger = "+12065550193"
    inbound_id = await post_twilio(client, org, "twilio/sms", sms(stranger, "Unsubscribe"))
    await run_worker(msg_settings, service_api)
    row = await inbound(sessionmaker, inbound_id)
    assert row.status == "processed" and row.lead_id is None and row.contact_id is None
    async with sessionmaker() as session:
        leads = list(await session.scalars(select(Lead).where(Lead.org_id == org.org_id)))
        records = list(await session.scalars(select(ConsentRecord).where(ConsentRecord.org_id == org.org_id)))
    assert leads == []
    assert [(r.address, r.state, r.source) for r in records] == [(stranger, "opted_out", "sms_keyword")]
    # the number calls later: a lead now, but the text-back is suppressed (consent binds the number)
    await post_twilio(client, org, "twilio/voice", missed_call(stranger))
    await run_worker(msg_settings, service_api)
    assert twilio.accepted(stranger) == []
    async with sessionmaker() as session:
        lead = await session.scalar(select(Lead).where(Lead.org_id == org.org_id))
    assert lead is not None
    [text_back] = await messages_of(sessionmaker, lead.id)
    assert (text_back.status, text_back.reason) == ("suppressed", "opted_out")


async def test_a_section_8_question_gets_only_the_neutral_acknowledgement_and_a_review_item(
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
    phone = "+12065550194"
    await post_twilio(client, org, "twilio/sms", sms(phone, "Hi, do you accept SECTION 8 for the 2 bedroom?"))
    await run_worker(msg_settings, service_api)

    [sent] = twilio.accepted(phone)
    assert sent["body"] == "Thanks for your message. A member of our team will follow up with you shortly."
    async with sessionmaker() as session:
        lead = await session.scalar(select(Lead).where(Lead.org_id == org.org_id))
        assert lead is not None
        [item] = list(await session.scalars(select(ReviewItem).where(ReviewItem.lead_id == lead.id)))
    messages = await messages_of(sessionmaker, lead.id)
    assert [(m.template, m.status) for m in messages] == [("sensitive_ack", "sent")]
    assert item.kind == "sensitive_conversation" and item.status == "open"
    [reason] = item.reasons
    assert (reason["category"], reason["phrase"]) == ("fair_housing_voucher", "section 8")
    assert datetime.fromisoformat(reason["sla_due_at"]) > clock.now()
    assert lead.automation_paused_reason == "sensitive_conversation"

    # automation stays off until a person resolves the item
    await post_twilio(client, org, "twilio/voice", missed_call(phone))
    await run_worker(msg_settings, service_api)
    [text_back] = [m for m in await messages_of(sessionmaker, lead.id) if m.template == "missed_call_text_back"]
    assert text_back.status == "suppressed"
    assert text_back.reason == "automation_paused: sensitive_conversation"
    resolved = await client.post(
        f"/v1/review-items/{item.id}/resolve", json={"action": "resolve", "note": "called her"}, headers=org.headers
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert (await lead_of(sessionmaker, lead.id)).automation_paused_at is None


async def test_quiet_hours_defer_a_follow_up_but_not_a_missed_call_text_back(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    msg_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    job_ctx: dict[str, Any],
    clock: FakeClock,
) -> None:
    from services.api.messaging.outbox import queue_message

    await setup_org(client, org)
    await use_twilio(client, org)
    clock.set(datetime(2026, 6, 3, 3, 0, tzinfo=UTC))  # 23:00 in New York (the property's timezone)
    phone = "+12065550195"
    await post_twilio(client, org, "twilio/voice", missed_call(phone))
    await run_worker(msg_settings, service_api)
    [text_back] = twilio.accepted(phone)  # at 23:00, at once
    assert "missed your call" in text_back["body"]

    async with sessionmaker() as session, session.begin():
        lead = await session.scalar(select(Lead).where(Lead.org_id == org.org_id))
        assert lead is not None
        follow_up = await queue_message(
            session,
            lead=lead,
            channel="sms",
            template="follow_up",
            kind="proactive",
            reason="sequence step 1",
            rule={"id": "test_sequence", "version": 1},
            idempotency_key=f"seq:{lead.id}:1",
            not_before=clock.now(),  # due now: 23:00 local
        )
    assert follow_up.status == "queued"
    assert follow_up.not_before == datetime(2026, 6, 3, 13, 0, tzinfo=UTC)  # 09:00 EDT the next morning
    assert follow_up.id not in await _due(sessionmaker)
    clock.set(datetime(2026, 6, 3, 12, 59, tzinfo=UTC))
    assert follow_up.id not in await _due(sessionmaker)
    clock.set(datetime(2026, 6, 3, 13, 0, tzinfo=UTC))
    assert follow_up.id in await _due(sessionmaker)
    await jobs.send_due_messages(job_ctx)
    assert await jobs.send_message(job_ctx, str(follow_up.id)) == "sent"
    assert [m["body"] for m in twilio.accepted(phone)][-1].startswith("Hi")
    assert len(twilio.accepted(phone)) == 2


async def _due(sessionmaker: async_sessionmaker[AsyncSession]) -> list[uuid.UUID]:
    async with sessionmaker() as session, session.begin():
        return await jobs.due_message_ids(session, clock_now())


async def _agent_sms(client: httpx.AsyncClient, org: OrgFixture, phone: str, text: str) -> str:
    lead_id = (await post_signal(client, envelope(org.org_id, phone=phone, email=None, event="call", channel="phone")))[
        "lead_id"
    ]
    response = await client.post(
        f"/v1/leads/{lead_id}/messages", json={"channel": "sms", "body": text}, headers=org.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_provider_500_is_retried_and_sent_once(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    job_ctx: dict[str, Any],
    clock: FakeClock,
) -> None:
    await use_twilio(client, org)
    message_id = await _agent_sms(client, org, "+12065550196", "Your tour is at 3pm")
    twilio.fail_next = [500]
    with pytest.raises(Retry):
        await jobs.send_message(job_ctx, message_id)
    async with sessionmaker() as session:
        row = await session.get_one(OutboundMessage, uuid.UUID(message_id))
    assert (row.status, row.error_code) == ("sending", "20500")  # a 5xx may have been accepted: ask first
    assert await jobs.send_message({**job_ctx, "job_try": 2}, message_id) == "sent"
    assert (twilio.posts, twilio.lists, len(twilio.accepted("+12065550196"))) == (2, 1, 1)
    assert await jobs.send_message({**job_ctx, "job_try": 3}, message_id) == "sent"  # arq ran it twice: no-op
    assert len(twilio.accepted("+12065550196")) == 1
    lead_id = (await client.get(f"/v1/leads/{row.lead_id}", headers=org.headers)).json()["id"]
    assert (await lead_of(sessionmaker, lead_id)).first_human_response_at is not None


async def test_a_provider_4xx_fails_with_its_reason_and_is_not_retried(
    client: httpx.AsyncClient, org: OrgFixture, twilio: FakeTwilio, job_ctx: dict[str, Any], clock: FakeClock
) -> None:
    await use_twilio(client, org)
    message_id = await _agent_sms(client, org, "+442079460958", "Hello")
    assert await jobs.send_message(job_ctx, message_id) == "failed"
    listed = await client.get(f"/v1/leads/{(await _lead_for(client, org, message_id))}/messages", headers=org.headers)
    [item] = [i for i in listed.json()["items"] if i["id"] == message_id]
    assert item["status"] == "failed" and "is not a valid phone number" in item["reason"]
    assert item["error_code"] == "21211" and twilio.posts == 1


async def _lead_for(client: httpx.AsyncClient, org: OrgFixture, message_id: str) -> str:
    leads = (await client.get("/v1/leads", headers=org.headers)).json()["items"]
    for lead in leads:
        items = (await client.get(f"/v1/leads/{lead['id']}/messages", headers=org.headers)).json()["items"]
        if any(i["id"] == message_id for i in items):
            return str(lead["id"])
    raise AssertionError("message not found")


async def test_killing_the_worker_between_the_2xx_and_the_status_update_does_not_send_twice(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    job_ctx: dict[str, Any],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await use_twilio(client, org)
    message_id = await _agent_sms(client, org, "+12065550197", "See you at 3")
    real_finish = jobs._finish

    async def killed(*args: Any, **kwargs: Any) -> str:
        raise asyncio.CancelledError  # the worker dies: Twilio said 201, our row still says `sending`

    monkeypatch.setattr(jobs, "_finish", killed)
    with pytest.raises(asyncio.CancelledError):
        await jobs.send_message(job_ctx, message_id)
    monkeypatch.setattr(jobs, "_finish", real_finish)
    assert twilio.posts == 1
    async with sessionmaker() as session:
        assert (await session.get_one(OutboundMessage, uuid.UUID(message_id))).status == "sending"

    clock.advance(minutes=1)
    assert uuid.UUID(message_id) not in await _due(sessionmaker)  # within the send window: not stuck yet
    clock.advance(minutes=2)
    assert uuid.UUID(message_id) in await _due(sessionmaker)  # the reconciliation picks it up
    await jobs.send_due_messages(job_ctx)
    assert await jobs.send_message(job_ctx, message_id) == "sent"
    assert (twilio.posts, twilio.lists) == (1, 1)
    async with sessionmaker() as session:
        row = await session.get_one(OutboundMessage, uuid.UUID(message_id))
    assert row.provider_message_id == twilio.accepted("+12065550197")[0]["sid"]


async def test_a_tour_request_emails_the_owner_and_adds_a_feed_entry(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    msg_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    smtp: SmtpSink,
    clock: FakeClock,
) -> None:
    await use_smtp(client, org, _sink_port(smtp))
    await post_signal(
        client,
        envelope(
            org.org_id,
            email="tour@example.com",
            event="tour_request",
            channel="web",
            source="website",
            message="Can I tour Saturday at 11?",
        ),
    )
    await run_worker(msg_settings, service_api)
    admin_email = f"admin@{org.org_id.hex[:8]}.invalid"
    [mail] = [m for m in smtp.to(admin_email) if "asked for a tour" in m["Subject"]]
    assert "Can I tour Saturday at 11?" in mail.get_content()
    feed = (await client.get("/v1/notifications", headers=org.headers)).json()
    [entry] = [n for n in feed["items"] if n["kind"] == "tour_request"]
    assert entry["read_at"] is None and feed["unread"] >= 1
    assert (await client.post(f"/v1/notifications/{entry['id']}/read", headers=org.headers)).status_code == 204
    feed = (await client.get("/v1/notifications?unread=true", headers=org.headers)).json()
    assert entry["id"] not in [n["id"] for n in feed["items"]]


def _sink_port(sink: SmtpSink) -> int:
    return int(sink.port)


async def test_an_unreachable_provider_is_retried_then_given_up_for_a_person(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    twilio: FakeTwilio,
    job_ctx: dict[str, Any],
    clock: FakeClock,
) -> None:
    await use_twilio(client, org)
    message_id = await _agent_sms(client, org, "+12065550189", "Are you there?")
    down = {**job_ctx, "settings": job_ctx["settings"].model_copy(update={"twilio_api_url": "http://127.0.0.1:9"})}
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        with pytest.raises(Retry):  # connection refused: surely not accepted, back to queued, retried
            await jobs.send_message({**down, "job_try": min(attempt, jobs.MAX_SEND_TRIES - 1)}, message_id)
    async with sessionmaker() as session:
        row = await session.get_one(OutboundMessage, uuid.UUID(message_id))
    assert (row.status, row.attempts) == ("queued", jobs.MAX_ATTEMPTS)
    assert await jobs.send_message(down, message_id) == "failed"
    assert twilio.posts == 0
