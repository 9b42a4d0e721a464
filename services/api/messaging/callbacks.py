"""Provider callbacks: Twilio's StatusCallback moves a message forward (never back)."""

from __future__ import annotations

import uuid

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.intake.service import signed_url
from services.api.intake.signatures import twilio_valid
from services.api.leads.events import add_event
from services.api.messaging.jobs import record_response
from services.api.messaging.outbox import message_data
from shared import clock
from shared.config import Settings
from shared.enums import EventType
from shared.errors import Unauthorized
from shared.logging import get_logger
from shared.models import Lead, MessagingProvider, OutboundMessage

log = get_logger(__name__)

RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "failed": 3}
TWILIO_STATUS = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
}


async def twilio_status(session: AsyncSession, settings: Settings, message_id: uuid.UUID, request: Request) -> None:
    form = await request.form()
    params = {key: str(value) for key, value in form.multi_items()}
    message = await session.scalar(select(OutboundMessage).where(OutboundMessage.id == message_id).with_for_update())
    provider = await session.get(MessagingProvider, (message.org_id, message.channel)) if message is not None else None
    secrets = provider.secret_values() if provider is not None and provider.provider == "twilio" else {}
    token = str(secrets.get("auth_token", ""))
    url = signed_url(settings.public_url, request)
    if message is None or not twilio_valid(url, params, token, request.headers.get("x-twilio-signature")):
        log.info("messaging.callback_refused", message_id=str(message_id))
        raise Unauthorized("Twilio signature missing or wrong.")
    target = TWILIO_STATUS.get(params.get("MessageStatus", "").lower())
    sid = params.get("MessageSid")
    if target is None or RANK.get(message.status, 9) >= RANK[target] or message.status == "suppressed":
        return
    if message.provider_message_id and sid and sid != message.provider_message_id:
        raise Unauthorized("This callback is about another provider message.")
    now = clock.now()
    was_pending = message.status in ("queued", "sending")
    message.status = target
    message.updated_at = now
    if sid:
        message.provider_message_id = sid
    if was_pending:
        message.sent_at = now
        await record_response(session, message, now)  # the callback beat our own status update
    if target == "delivered":
        message.delivered_at = now
        event = EventType.message_delivered
    elif target == "failed":
        message.failed_at = now
        message.error_code = params.get("ErrorCode")
        message.reason = f"provider: {params.get('MessageStatus')} ({params.get('ErrorCode') or 'no code'})"
        event = EventType.message_failed
    else:
        return
    lead = await session.get(Lead, message.lead_id) if message.lead_id and message.user_id is None else None
    if lead is not None:
        add_event(session, lead, event, channel=message.channel, data=message_data(message))
    log.info("messaging.callback", message_id=str(message_id), status=target)
