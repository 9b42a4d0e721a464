"""Worker jobs of the outbox: send one message, drain deferred ones, reconcile stuck ones.

No database transaction is open while a provider is called. The `sending` state is committed before the
call, so a crash after the provider's 2xx leaves a `sending` row that is resolved by asking the provider
(Twilio: list messages to that number) before any resend (docs/messaging.md, "never twice").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from arq import Retry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.leads.events import add_event, add_status_event
from services.api.leads.status import advance_for_touch
from services.api.messaging.consent import is_opted_out
from services.api.messaging.outbox import (
    AUTOMATED,
    CLOSED,
    PAUSE_EXEMPT_TEMPLATES,
    UNSUBSCRIBE_PURPOSE,
    UNSUBSCRIBE_TTL,
    enqueue_send,
    message_data,
    provider_for,
)
from services.api.messaging.providers import PROVIDERS, Accepted, Outgoing, ProviderError, Unknowable
from services.api.messaging.quiet_hours import next_allowed
from shared import clock
from shared.enums import EventType
from shared.logging import get_logger
from shared.models import Contact, Lead, MessagingSettings, Organization, OutboundMessage, Property
from shared.queue import job_transaction
from shared.service_token import resolve_secret_key
from shared.signing import sign

log = get_logger(__name__)

MAX_SEND_TRIES = 6
MAX_ATTEMPTS = 10  # provider calls per message, over job retries and cron rounds: then failed for a person
STUCK_AFTER = timedelta(minutes=2)
LOST_JOB_AFTER = timedelta(minutes=1)
BATCH = 200


def backoff(job_try: int) -> float:
    return float(min(600, 5 * 2 ** max(0, job_try - 1)))


@dataclass
class Plan:
    outgoing: Outgoing
    provider: str
    resend: bool


async def send_message(ctx: dict[str, Any], message_id: str) -> str:
    """Send one outbox row (idempotent: anything but queued/sending is already settled)."""
    settings = ctx["settings"]
    base_url = settings.twilio_api_url
    async with job_transaction(ctx) as session:
        plan_or_state = await _claim(session, uuid.UUID(message_id), settings)
    if isinstance(plan_or_state, str):
        return plan_or_state
    plan = plan_or_state
    provider = PROVIDERS[plan.provider]
    bound = {"message_id": message_id, "provider": plan.provider}
    if plan.resend:
        try:
            found = await provider.lookup(plan.outgoing, base_url)
        except Unknowable:
            await _finish(ctx, message_id, "failed", reason="outcome_unknown: crashed while sending")
            log.warning("messaging.outcome_unknown", **bound)
            return "failed"
        except ProviderError as error:
            log.warning("messaging.lookup_failed", **bound, error=str(error))
            raise Retry(defer=backoff(int(ctx.get("job_try", 1)))) from error
        if found is not None:
            log.info("messaging.found_at_provider", **bound)
            return await _finish(ctx, message_id, "sent", accepted=found)
        async with job_transaction(ctx) as session:  # not there: a resend is safe; count the attempt
            row = await session.get(OutboundMessage, uuid.UUID(message_id), with_for_update=True)
            if row is None or row.status != "sending":
                return row.status if row else "missing"
            row.attempts += 1
            row.sending_at = clock.now()
            plan.outgoing.sending_at = row.sending_at
    try:
        accepted = await provider.send(plan.outgoing, base_url)
    except ProviderError as error:
        return await _failed_attempt(ctx, message_id, error, bound)
    except Exception as error:  # a bug or an odd answer: treat as "may have been accepted", ask before resending
        log.exception("messaging.send_error", **bound)
        unexpected = ProviderError(type(error).__name__, permanent=False, definite=False)
        return await _failed_attempt(ctx, message_id, unexpected, bound)
    return await _finish(ctx, message_id, "sent", accepted=accepted)


async def _claim(session: AsyncSession, message_id: uuid.UUID, settings: Any) -> Plan | str:
    message = await session.scalar(
        select(OutboundMessage).where(OutboundMessage.id == message_id).with_for_update(skip_locked=True)
    )
    if message is None:
        return "busy_or_missing"
    if message.status not in ("queued", "sending"):
        return message.status
    now = clock.now()
    resend = message.status == "sending"
    if message.attempts >= MAX_ATTEMPTS:
        _settle(session, message, "failed", now, reason=f"gave_up: {message.attempts} attempts")
        await _timeline(session, message, EventType.message_failed)
        return "failed"
    if not resend:
        if message.not_before is not None and message.not_before > now:
            return "deferred"
        verdict = await _send_time_check(session, message, now)
        if verdict is not None:
            return verdict
    provider_row = await provider_for(session, message.org_id, message.channel)
    provider = provider_row.provider if provider_row else settings.messaging_default_provider
    if provider not in PROVIDERS:
        _settle(session, message, "failed", now, reason="no_provider: configure PUT /v1/integrations/messaging/…")
        await _timeline(session, message, EventType.message_failed)
        return "failed"
    if not resend:
        message.status = "sending"
        message.sending_at = now
        message.attempts += 1
        message.provider = provider
    config = dict(provider_row.config) if provider_row else {}
    if message.channel == "email":
        config.setdefault("from_email", config.get("from_email") or "leasing@guestcard.local")
        message.from_address = config["from_email"]
    elif provider_row is not None:
        message.from_address = config.get("from_number") or config.get("messaging_service_sid")
    public = (settings.public_url or settings.api_base_url()).rstrip("/")
    headers, body = dict(message.headers or {}), message.body
    if message.channel == "email" and message.user_id is None:
        headers, body = await _renter_email_extras(session, message, settings, public, headers, body, now)
    outgoing = Outgoing(
        id=str(message.id),
        channel=message.channel,
        to=message.to_address or "",
        body=body,
        subject=message.subject,
        headers=headers,
        sending_at=message.sending_at or now,
        status_callback=f"{public}/v1/messaging/twilio/status/{message.id}" if provider == "twilio" else None,
        config=config,
        secrets=provider_row.secret_values() if provider_row else {},
    )
    return Plan(outgoing, provider, resend)


async def _renter_email_extras(
    session: AsyncSession,
    message: OutboundMessage,
    settings: Any,
    public: str,
    headers: dict[str, str],
    body: str,
    now: datetime,
) -> tuple[dict[str, str], str]:
    """A signed one-click unsubscribe link (body + List-Unsubscribe / -Post, RFC 8058) and threading headers
    to our previous email on this lead, so the conversation stays one thread for the renter."""
    token = sign(
        resolve_secret_key(settings),
        UNSUBSCRIBE_PURPOSE,
        {"org": str(message.org_id), "contact": str(message.contact_id or ""), "address": message.to_address},
        expires_at=now + UNSUBSCRIBE_TTL,
    )
    link = f"{public}/v1/unsubscribe/{token}"
    headers["List-Unsubscribe"] = f"<{link}>"
    headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    previous = await session.scalar(
        select(OutboundMessage.provider_message_id)
        .where(
            OutboundMessage.lead_id == message.lead_id,
            OutboundMessage.channel == "email",
            OutboundMessage.user_id.is_(None),
            OutboundMessage.status.in_(("sent", "delivered")),
            OutboundMessage.id != message.id,
        )
        .order_by(OutboundMessage.sent_at.desc())
        .limit(1)
    )
    if previous and previous.startswith("<"):
        headers["In-Reply-To"] = previous
        headers["References"] = previous
    return headers, f"{body}\n\n--\nTo stop these emails: {link}"


async def _send_time_check(session: AsyncSession, message: OutboundMessage, now: datetime) -> str | None:
    """Consent and pause again at send time; a proactive SMS that drifted into quiet hours waits again."""
    if message.user_id is not None or message.lead_id is None:
        return None  # staff notification
    lead = await session.get(Lead, message.lead_id)
    contact = await session.get(Contact, message.contact_id) if message.contact_id else None
    if lead is None:
        return None
    reason = None
    if await is_opted_out(session, message.org_id, message.channel, contact=contact, address=message.to_address):
        reason = "opted_out"
    elif (
        message.kind in AUTOMATED
        and lead.automation_paused_at is not None
        and message.template not in PAUSE_EXEMPT_TEMPLATES
    ):
        reason = f"automation_paused: {lead.automation_paused_reason or 'paused'}"
    elif message.kind == "proactive" and lead.status in CLOSED:
        reason = "lead_closed"
    if reason is not None:
        _settle(session, message, "suppressed", now, reason=reason)
        await _timeline(session, message, EventType.message_suppressed, lead)
        return "suppressed"
    if message.channel == "sms" and message.kind == "proactive":
        prop = await session.get(Property, lead.property_id) if lead.property_id else None
        org = await session.get(Organization, lead.org_id)
        settings = await session.get(MessagingSettings, lead.org_id)
        timezone = prop.timezone if prop else (org.timezone if org else None)
        allowed = next_allowed(now, timezone, settings.quiet_hours if settings else None)
        if allowed > now:
            message.not_before = allowed
            return "deferred"
    return None


def _settle(
    session: AsyncSession,
    message: OutboundMessage,
    status: str,
    now: datetime,
    *,
    reason: str | None = None,
    accepted: Accepted | None = None,
    error: ProviderError | None = None,
) -> None:
    message.status = status
    message.updated_at = now
    if reason is not None:
        message.reason = reason
    if status == "sent":
        message.sent_at = message.sent_at or now
        if accepted is not None:
            message.provider_message_id = accepted.provider_message_id
    elif status == "failed":
        message.failed_at = now
    elif status == "suppressed":
        message.suppressed_at = now
    if error is not None:
        message.error_code = error.code
        message.error_message = str(error)[:2000]


async def _timeline(
    session: AsyncSession, message: OutboundMessage, event: EventType, lead: Lead | None = None
) -> Lead | None:
    if message.lead_id is None or message.user_id is not None:
        return None
    lead = lead or await session.get(Lead, message.lead_id)
    if lead is not None:
        add_event(session, lead, event, channel=message.channel, data=message_data(message))
    return lead


async def _finish(
    ctx: dict[str, Any],
    message_id: str,
    status: str,
    *,
    accepted: Accepted | None = None,
    reason: str | None = None,
    error: ProviderError | None = None,
) -> str:
    async with job_transaction(ctx) as session:
        message = await session.get(OutboundMessage, uuid.UUID(message_id), with_for_update=True)
        if message is None:
            return "missing"
        if message.status not in ("queued", "sending"):
            return message.status  # a status callback settled it first
        now = clock.now()
        _settle(session, message, status, now, reason=reason, accepted=accepted, error=error)
        if status == "sent":
            await record_response(session, message, now)
        else:
            await _timeline(session, message, EventType.message_failed)
    log.info("messaging.settled", message_id=message_id, status=status)
    return status


async def record_response(session: AsyncSession, message: OutboundMessage, at: datetime) -> None:
    """The timeline entry, and first response recorded twice: automated and human (plus any-kind)."""
    lead = await _timeline(session, message, EventType.message_sent)
    if lead is None:
        return
    await session.refresh(lead, with_for_update=True)
    if message.kind in AUTOMATED and lead.first_automated_response_at is None:
        lead.first_automated_response_at = at
    if message.kind == "human" and lead.first_human_response_at is None:
        lead.first_human_response_at = at
    if message.kind == "human":  # a person wrote: a touch that moves new → contacted
        touch = EventType.sms_out if message.channel == "sms" else EventType.email_out
        previous = advance_for_touch(lead, touch, at)
        if previous is not None:
            add_status_event(session, lead, previous, occurred_at=at, cause=touch)
    elif lead.first_response_at is None:  # automation answered first: speed to lead, but not "contacted"
        lead.first_response_at = at
        lead.first_response_seconds = max(0, int((at - lead.created_at).total_seconds()))
    lead.version += 1
    lead.updated_at = at


async def _failed_attempt(ctx: dict[str, Any], message_id: str, error: ProviderError, bound: dict[str, str]) -> str:
    job_try = int(ctx.get("job_try", 1))
    if error.permanent:
        log.warning("messaging.refused", **bound, code=error.code)
        return await _finish(ctx, message_id, "failed", reason=f"provider_refused: {error}"[:200], error=error)
    async with job_transaction(ctx) as session:
        message = await session.get(OutboundMessage, uuid.UUID(message_id), with_for_update=True)
        if message is None or message.status != "sending":
            return message.status if message else "missing"
        message.error_code = error.code
        message.error_message = str(error)[:2000]
        if error.definite:
            message.status = "queued"  # surely not accepted: the retry sends without asking first
    log.warning("messaging.retry", **bound, job_try=job_try, definite=error.definite, code=error.code)
    if job_try >= MAX_SEND_TRIES:
        return "retry_by_cron"
    raise Retry(defer=backoff(job_try))


async def send_due_messages(ctx: dict[str, Any]) -> int:
    """Cron: queue the send job of every message now due — deferred by quiet hours or `not_before`, whose
    job was lost, or left `sending` by a crash (its job asks the provider before any resend)."""
    async with job_transaction(ctx) as session:
        ids = await due_message_ids(session, clock.now())
        for message_id in ids:
            enqueue_send(session, message_id)
    return len(ids)


async def due_message_ids(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Rows locked with SKIP LOCKED: two workers draining at once split the work instead of doubling it."""
    due = (
        select(OutboundMessage.id)
        .where(
            OutboundMessage.status == "queued",
            (OutboundMessage.not_before <= now)
            | (OutboundMessage.not_before.is_(None) & (OutboundMessage.queued_at <= now - LOST_JOB_AFTER)),
        )
        .order_by(OutboundMessage.not_before.nulls_first())
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    stuck = (
        select(OutboundMessage.id)
        .where(OutboundMessage.status == "sending", OutboundMessage.sending_at <= now - STUCK_AFTER)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    return list(await session.scalars(due)) + list(await session.scalars(stuck))
