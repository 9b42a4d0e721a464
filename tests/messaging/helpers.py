"""Driving the real paths: Twilio webhooks into intake (signed), signals into the API, burst workers."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.intake.signatures import twilio_signature
from services.intake.worker import build_worker
from shared.config import Settings
from shared.models import InboundMessage, Lead, OutboundMessage, ScheduledAction
from tests.conftest import OrgFixture
from tests.intake.test_intake_support import PUBLIC_URL, SECRETS, set_secrets

TRACKING = "+15125550100"


async def post_twilio(client: httpx.AsyncClient, org: OrgFixture, kind: str, form: dict[str, str]) -> uuid.UUID:
    """A Twilio webhook as Twilio sends it: form-encoded, X-Twilio-Signature over URL + sorted params."""
    path = f"/v1/intake/{org.intake_key}/{kind}"
    signature = twilio_signature(PUBLIC_URL + path, form, SECRETS["twilio"])
    response = await client.post(
        path,
        content=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert response.status_code in (200, 202), response.text
    return uuid.UUID(response.headers["x-inbound-id"])


def missed_call(phone: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
        "CallSid": "CA" + uuid.uuid4().hex,
        "From": phone,
        "To": TRACKING,
        "CallStatus": "in-progress",
        "DialCallStatus": "no-answer",
        "DialCallSid": "CA" + uuid.uuid4().hex,
    }


def sms(phone: str, body: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "MessageSid": "SM" + uuid.uuid4().hex,
        "SmsMessageSid": "SM" + uuid.uuid4().hex,
        "SmsStatus": "received",
        "From": phone,
        "To": TRACKING,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }


async def run_worker(settings: Settings, api: Any) -> None:
    """A burst worker on the real queue: returns when every queued job (and those they queued) ran."""
    worker = build_worker(settings, ctx={"api": api, "owns_api": False}, burst=True, cron_jobs=[], poll_delay=0.01)
    try:
        await worker.async_run()
    finally:
        await worker.close()


async def inbound(sessionmaker: async_sessionmaker[AsyncSession], inbound_id: uuid.UUID) -> InboundMessage:
    async with sessionmaker() as session:
        return await session.get_one(InboundMessage, inbound_id)


async def lead_of(sessionmaker: async_sessionmaker[AsyncSession], lead_id: Any) -> Lead:
    async with sessionmaker() as session:
        return await session.get_one(Lead, uuid.UUID(str(lead_id)))


async def messages_of(sessionmaker: async_sessionmaker[AsyncSession], lead_id: Any) -> list[OutboundMessage]:
    async with sessionmaker() as session:
        return list(
            await session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.lead_id == uuid.UUID(str(lead_id)), OutboundMessage.user_id.is_(None))
                .order_by(OutboundMessage.created_at, OutboundMessage.id)
            )
        )


async def setup_org(client: httpx.AsyncClient, org: OrgFixture) -> None:
    await set_secrets(client, org)
    response = await client.post(
        "/v1/properties",
        json={"name": "Maple Court", "timezone": "America/New_York", "phone_numbers": [TRACKING]},
        headers=org.headers,
    )
    assert response.status_code == 201, response.text


async def follow_up_steps(sessionmaker: async_sessionmaker[AsyncSession], lead_id: Any) -> list[ScheduledAction]:
    """The automation engine's "follow up a day after the inquiry" steps of a lead."""
    async with sessionmaker() as session:
        query = select(ScheduledAction).where(
            ScheduledAction.lead_id == uuid.UUID(str(lead_id)), ScheduledAction.sequence == "inquiry_follow_up"
        )
        return list((await session.scalars(query.order_by(ScheduledAction.due_at))).all())
