"""Worker jobs of the outbox: send the messages a transaction queued, send one message, drain deferred ones,
reconcile stuck ones.

Sending is three steps, for one message or a batch alike: claim (one transaction: one statement reads and
locks the messages with what the send-time check needs, then each becomes `sending` or is settled),
the provider calls (side by side, no transaction open), settle (one transaction). No database transaction
is open while a provider is called. The `sending` state is committed before the
call, so a crash after the provider's 2xx leaves a `sending` row that is resolved by asking the provider
(Twilio: list messages to that number) before any resend (docs/messaging.md, "never twice").
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from arq import Retry
from sqlalchemy import Integer, Select, Table, and_, any_, bindparam, case, func, or_, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.leads.events import add_event, add_status_event
from services.api.leads.status import advance_for_touch
from services.api.messaging.outbox import (
    AUTOMATED,
    CLOSED,
    PAUSE_EXEMPT_TEMPLATES,
    UNSUBSCRIBE_PURPOSE,
    UNSUBSCRIBE_TTL,
    message_data,
)
from services.api.messaging.providers import PROVIDERS, Accepted, Outgoing, ProviderError, Unknowable
from services.api.messaging.quiet_hours import next_allowed
from shared import clock
from shared.enums import ConsentState, EventType
from shared.logging import get_logger
from shared.models import (
    ConsentRecord,
    Contact,
    Lead,
    MessagingProvider,
    MessagingSettings,
    Organization,
    OutboundMessage,
    Property,
)
from shared.models.lead import LEAD_LOCK
from shared.queue import BATCH_MAX, JobRequest, enqueue_after_commit, job_transaction, send_jobs
from shared.repositories import driver
from shared.service_token import resolve_secret_key
from shared.signing import sign

log = get_logger(__name__)

MAX_SEND_TRIES = 6
MAX_ATTEMPTS = 10  # provider calls per message, over job retries and cron rounds: then failed for a person
STUCK_AFTER = timedelta(minutes=2)
LOST_JOB_AFTER = timedelta(minutes=1)
BATCH = 200
# provider calls in flight per job: all of a batch job's at once, as when each job carried 16 and the worker ran
# a transaction's jobs side by side (a provider's latency, not our CPU, is what a renter would wait for); a
# provider that hangs costs one timeout, not several in a row, within the job's timeout
SEND_CONCURRENCY = BATCH_MAX


def backoff(job_try: int) -> float:
    return float(min(600, 5 * 2 ** max(0, job_try - 1)))


@dataclass
class Plan:
    outgoing: Outgoing
    provider: str
    resend: bool
    message: OutboundMessage  # the row as claimed (out of the session): what settling writes and the timeline shows


@dataclass
class Outcome:
    """What the provider said, to be written in the settling transaction."""

    status: str  # sent | failed | retry
    accepted: Accepted | None = None
    reason: str | None = None
    error: ProviderError | None = None


async def send_messages(ctx: dict[str, Any], message_ids: list[str]) -> dict[str, int]:
    """The job the outbox queues after commit for the messages one transaction queued (up to BATCH_MAX):
    claimed in one statement, sent side by side, settled in one transaction. A message that needs another try
    gets its own `send_message` job, deferred by the backoff (the job the sweep queues too, under the same id,
    so arq's dedup keeps the sweep from cutting the backoff short)."""
    job_try = int(ctx.get("job_try", 1))
    results, failure = await _send(ctx, [uuid.UUID(message_id) for message_id in message_ids], job_try)
    retries = [message_id for message_id, status in results.items() if status == "retry"]
    if retries and job_try < MAX_SEND_TRIES:
        jobs = [
            JobRequest(
                "send_message", (str(message_id), job_try), job_id=f"send:{message_id}", defer_s=backoff(job_try)
            )
            for message_id in retries
        ]
        await send_jobs(ctx.get("redis"), jobs, ctx["settings"].queue_name)  # lost: the sweep finds the rows
    if failure is not None:
        raise failure
    counts: dict[str, int] = {}
    for status in results.values():
        counts[status] = counts.get(status, 0) + 1
    return counts


async def send_message(ctx: dict[str, Any], message_id: str, prior_tries: int = 0) -> str:
    """Send one outbox row (idempotent: anything but queued/sending is already settled). `prior_tries`: the
    tries a batch job made before it handed the message to this job."""
    job_try = int(ctx.get("job_try", 1)) + prior_tries
    key = uuid.UUID(message_id)
    results, failure = await _send(ctx, [key], job_try)
    if failure is not None:
        raise failure
    status = results[key]
    if status != "retry":
        return status
    if job_try >= MAX_SEND_TRIES:
        return "retry_by_cron"
    raise Retry(defer=backoff(job_try))


async def _send(
    ctx: dict[str, Any], message_ids: list[uuid.UUID], job_try: int
) -> tuple[dict[uuid.UUID, str], BaseException | None]:
    """Claim (one transaction), call the providers (no transaction open), settle (one transaction).

    Returns each message's status, or "retry" for one whose try failed in a way that is worth repeating; and
    the first error of a message's own bookkeeping, for the caller to raise once the others are settled."""
    settings = ctx["settings"]
    async with job_transaction(ctx) as session:
        plans, results = await _claim(session, message_ids, settings)
    if not plans:
        return results, None
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def attempt(plan: Plan) -> Outcome | str:
        async with gate:
            return await _attempt(ctx, plan, settings.twilio_api_url, job_try)

    attempted = await asyncio.gather(*(attempt(plan) for plan in plans), return_exceptions=True)
    outcomes: dict[uuid.UUID, tuple[OutboundMessage, Outcome]] = {}
    failure: BaseException | None = None
    for plan, outcome in zip(plans, attempted, strict=True):
        key = uuid.UUID(plan.outgoing.id)
        if isinstance(outcome, BaseException):
            failure = failure or outcome  # a database error in a resend's bookkeeping: the rest still settles
            results.pop(key, None)
        elif isinstance(outcome, str):
            results[key] = outcome
        elif outcome.status == "retry" and outcome.error is None:
            results[key] = "retry"  # the provider could not be asked: nothing to write
        else:
            outcomes[key] = (plan.message, outcome)
    if outcomes:
        results |= await _finish(ctx, outcomes, job_try)
    return results, failure


async def _attempt(ctx: dict[str, Any], plan: Plan, base_url: str, job_try: int) -> Outcome | str:
    """The provider call of one claimed message (a resend asks the provider first)."""
    provider = PROVIDERS[plan.provider]
    message_id = plan.outgoing.id
    bound = {"message_id": message_id, "provider": plan.provider}
    if plan.resend:
        try:
            found = await provider.lookup(plan.outgoing, base_url)
        except Unknowable:
            log.warning("messaging.outcome_unknown", **bound)
            return Outcome("failed", reason="outcome_unknown: crashed while sending")
        except ProviderError as error:
            log.warning("messaging.lookup_failed", **bound, error=str(error))
            return Outcome("retry")
        if found is not None:
            log.info("messaging.found_at_provider", **bound)
            return Outcome("sent", accepted=found)
        async with job_transaction(ctx) as session:  # not there: a resend is safe; count the attempt
            row = await session.get(OutboundMessage, uuid.UUID(message_id), with_for_update=True)
            if row is None or row.status != "sending":
                return row.status if row else "missing"
            row.attempts += 1
            row.sending_at = clock.now()
            plan.outgoing.sending_at = plan.message.sending_at = row.sending_at
            plan.message.attempts = row.attempts
    try:
        accepted = await provider.send(plan.outgoing, base_url)
    except ProviderError as error:
        return _failed_attempt(error, bound, job_try)
    except Exception as error:  # a bug or an odd answer: treat as "may have been accepted", ask before resending
        log.exception("messaging.send_error", **bound)
        return _failed_attempt(ProviderError(type(error).__name__, permanent=False, definite=False), bound, job_try)
    return Outcome("sent", accepted=accepted)


def _failed_attempt(error: ProviderError, bound: dict[str, str], job_try: int) -> Outcome:
    if error.permanent:
        log.warning("messaging.refused", **bound, code=error.code)
        return Outcome("failed", reason=f"provider_refused: {error}"[:200], error=error)
    log.warning("messaging.retry", **bound, job_try=job_try, definite=error.definite, code=error.code)
    return Outcome("retry", error=error)


# a job's ids as one uuid[] parameter: one statement text whatever their number, prepared once per connection
# (an expanding IN is a new text, parsed and planned again, for each count: ~0.8 ms of planning a claim)
IDS = bindparam("ids", type_=ARRAY(OutboundMessage.id.type))


def _claim_statement() -> Select[Any]:
    """The messages (locked, SKIP LOCKED: a row another job holds is that job's), each with its channel's
    provider and, for a renter's message, what the send-time check needs: the lead's state and the consent
    of the contact or address written to (the newest ledger record, else the contact's column), as
    `consent.is_opted_out` reads it."""
    renter = OutboundMessage.user_id.is_(None)
    ledger = (
        select(ConsentRecord.state)
        .where(
            ConsentRecord.org_id == OutboundMessage.org_id,
            ConsentRecord.channel == OutboundMessage.channel,
            or_(
                ConsentRecord.contact_id == Contact.id,
                and_(
                    func.coalesce(OutboundMessage.to_address, "") != "",
                    ConsentRecord.address == OutboundMessage.to_address,
                ),
            ),
        )
        .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    column = case((OutboundMessage.channel == "sms", Contact.sms_consent), else_=Contact.email_consent)
    consent = case((Lead.id.is_not(None), func.coalesce(ledger, column)))
    return (
        select(
            OutboundMessage,
            MessagingProvider,
            Lead.id,
            Lead.status,
            Lead.automation_paused_at,
            Lead.automation_paused_reason,
            consent,
        )
        .outerjoin(
            MessagingProvider,
            (MessagingProvider.org_id == OutboundMessage.org_id)
            & (MessagingProvider.channel == OutboundMessage.channel),
        )
        .outerjoin(Lead, (Lead.id == OutboundMessage.lead_id) & renter)
        .outerjoin(Contact, (Contact.id == OutboundMessage.contact_id) & renter)
        .where(OutboundMessage.id == any_(IDS))
        .order_by(OutboundMessage.id)
        .with_for_update(of=OutboundMessage, skip_locked=True)
    )


CLAIM = _claim_statement()  # built once: a job only binds its ids
LOCK = (
    select(OutboundMessage.id, OutboundMessage.status)
    .where(OutboundMessage.id == any_(IDS))
    .order_by(OutboundMessage.id)
    .with_for_update()
)
LEAD_IDS = bindparam("ids", type_=ARRAY(Lead.id.type))
# the settled messages' leads, locked in one order (LEAD_LOCK: FOR NO KEY UPDATE, spelled out for the type
# checker), with what a timeline entry needs of them
LOCK_LEAD_KEYS = (
    select(Lead.id, Lead.org_id, Lead.contact_id, Lead.property_id)
    .where(Lead.id == any_(LEAD_IDS))
    .order_by(Lead.id)
    .with_for_update(key_share=True)
)
LOAD_LEADS = select(Lead).where(Lead.id == any_(LEAD_IDS))  # locked by LOCK_LEAD_KEYS first


@dataclass(frozen=True)
class LeadKeys:
    """What a timeline entry needs of its lead (`leads.events.add_event`)."""

    id: uuid.UUID
    org_id: uuid.UUID
    contact_id: uuid.UUID
    property_id: uuid.UUID | None


_leads = cast(Table, Lead.__table__)
_AT = bindparam("at", type_=Lead.updated_at.type)
# `record_response` for an automated reply, by set: the first automated response, and the first response (speed
# to lead) with its seconds when none was recorded yet (every right-hand side reads the row as it was)
FIRST_REPLY = (
    _leads.update()
    .where(_leads.c.id == any_(LEAD_IDS))
    .values(
        first_automated_response_at=func.coalesce(_leads.c.first_automated_response_at, _AT),
        first_response_seconds=case(
            (
                _leads.c.first_response_at.is_(None),
                sql_cast(func.greatest(0, func.floor(func.extract("epoch", _AT - _leads.c.created_at))), Integer),
            ),
            else_=_leads.c.first_response_seconds,
        ),
        first_response_at=func.coalesce(_leads.c.first_response_at, _AT),
        version=_leads.c.version + 1,
        updated_at=_AT,
    )
)
# the columns a send moves; `_write` puts each claimed or settled row as it stands in memory, one statement
WRITTEN = (
    "status",
    "updated_at",
    "reason",
    "sending_at",
    "attempts",
    "provider",
    "from_address",
    "not_before",
    "sent_at",
    "provider_message_id",
    "failed_at",
    "suppressed_at",
    "error_code",
    "error_message",
)
_outbox = cast(Table, OutboundMessage.__table__)


async def _write(session: AsyncSession, messages: list[OutboundMessage]) -> None:
    """The rows of these (locked) messages as they now stand in memory, in one `UPDATE … FROM unnest`
    (`driver.update_rows`): the ORM would flush them one statement each, an executemany runs one UPDATE per
    row. They leave the session first, so the ORM does not write them a second time."""
    if not messages:
        return
    rows = [{"id": message.id, **{name: getattr(message, name) for name in WRITTEN}} for message in messages]
    for message in messages:
        if message in session:
            session.expunge(message)
    await driver.update_rows(session, _outbox, rows)


async def _claim(
    session: AsyncSession, message_ids: list[uuid.UUID], settings: Any
) -> tuple[list[Plan], dict[uuid.UUID, str]]:
    """Decide, for each message, in one transaction: settled already, given up, deferred, suppressed at send
    time, or `sending` (committed before any provider call) with what the provider needs."""
    results: dict[uuid.UUID, str] = dict.fromkeys(message_ids, "busy_or_missing")
    plans: list[Plan] = []
    touched: list[OutboundMessage] = []
    now = clock.now()
    public = (settings.public_url or settings.api_base_url()).rstrip("/")
    for message, provider_row, lead_id, lead_status, paused_at, paused_reason, consent in (
        await session.execute(CLAIM, {"ids": message_ids})
    ).all():
        if message.status not in ("queued", "sending"):
            results[message.id] = message.status
            continue
        touched.append(message)
        message.updated_at = now
        resend = message.status == "sending"
        if message.attempts >= MAX_ATTEMPTS:
            _settle(session, message, "failed", now, reason=f"gave_up: {message.attempts} attempts")
            await _timeline(session, message, EventType.message_failed)
            results[message.id] = "failed"
            continue
        if not resend:
            if message.not_before is not None and message.not_before > now:
                results[message.id] = "deferred"
                continue
            if lead_id is not None:  # a renter's message whose lead is there: consent, pause, quiet hours again
                check = LeadCheck(lead_status, paused_at, paused_reason, consent == ConsentState.opted_out)
                verdict = await _send_time_check(session, message, check, now)
                if verdict is not None:
                    results[message.id] = verdict
                    continue
        provider = provider_row.provider if provider_row else settings.messaging_default_provider
        if provider not in PROVIDERS:
            _settle(session, message, "failed", now, reason="no_provider: configure PUT /v1/integrations/messaging/…")
            await _timeline(session, message, EventType.message_failed)
            results[message.id] = "failed"
            continue
        plans.append(await _plan(session, message, provider_row, provider, resend, settings, public, now))
        results[message.id] = "sending"
    await _write(session, touched)
    return plans, results


async def _plan(
    session: AsyncSession,
    message: OutboundMessage,
    provider_row: MessagingProvider | None,
    provider: str,
    resend: bool,
    settings: Any,
    public: str,
    now: datetime,
) -> Plan:
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
    return Plan(outgoing, provider, resend, message)


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


@dataclass
class LeadCheck:
    """What the send-time check reads of a renter's lead and consent (one claim statement for the batch)."""

    status: str
    paused_at: datetime | None
    paused_reason: str | None
    opted_out: bool


async def _send_time_check(
    session: AsyncSession, message: OutboundMessage, check: LeadCheck, now: datetime
) -> str | None:
    """Consent and pause again at send time; a proactive SMS that drifted into quiet hours waits again."""
    reason = None
    if check.opted_out:
        reason = "opted_out"
    elif message.kind in AUTOMATED and check.paused_at is not None and message.template not in PAUSE_EXEMPT_TEMPLATES:
        reason = f"automation_paused: {check.paused_reason or 'paused'}"
    elif message.kind == "proactive" and check.status in CLOSED:
        reason = "lead_closed"
    if reason is not None:
        _settle(session, message, "suppressed", now, reason=reason)
        await _timeline(session, message, EventType.message_suppressed)
        return "suppressed"
    if message.channel == "sms" and message.kind == "proactive":
        lead = await session.get(Lead, message.lead_id)
        if lead is None:
            return None
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
    if not _renters(message):
        return None
    lead = lead or await session.get(Lead, message.lead_id)
    if lead is not None:
        add_event(session, lead, event, channel=message.channel, data=message_data(message))
    return lead


async def _finish(
    ctx: dict[str, Any], outcomes: dict[uuid.UUID, tuple[OutboundMessage, Outcome]], job_try: int
) -> dict[uuid.UUID, str]:
    """Settle what the providers answered, in one transaction: the rows (locked in id order; written from the
    claimed copies, which only this job changed since), their timeline entries, their leads (locked too, in one
    statement and one order).

    The common answer, an automated reply the provider took, is settled by set: its lead's first response in
    one UPDATE for the batch (`FIRST_REPLY`), its timeline entry and stream row as values written with one
    INSERT per table (`txmemo.append_row`), where loading each lead through the ORM and flushing it was about
    a fifth of the worker's CPU per lead at 200 leads/s. A person's message (it may move the lead's status),
    a failure and a lead with both go through `record_response` with the lead loaded, as before.

    A row a status callback settled meanwhile stays as it is (both only move a message forward)."""
    results: dict[uuid.UUID, str] = dict.fromkeys(outcomes, "missing")
    async with job_transaction(ctx) as session:
        now = clock.now()
        states: dict[uuid.UUID, str] = {
            row[0]: row[1] for row in await session.execute(LOCK, {"ids": sorted(outcomes)})
        }
        open_ = [message for message, _ in outcomes.values() if states.get(message.id) in ("queued", "sending")]
        for message_id, status in states.items():
            results[message_id] = status  # a status callback settled it first (open ones are overwritten below)
        settled = [message for message in open_ if outcomes[message.id][1].status != "retry"]
        by_set = _first_replies(settled, outcomes)
        lead_ids = sorted({message.lead_id for message in settled if _renters(message)})  # type: ignore[type-var]
        keys: dict[uuid.UUID, LeadKeys] = {}
        if lead_ids:
            keys = {row.id: LeadKeys(*row) for row in await session.execute(LOCK_LEAD_KEYS, {"ids": lead_ids})}
        loaded = sorted(set(keys) - {message.lead_id for message in by_set})
        leads: dict[uuid.UUID, Lead] = {}
        if loaded:  # locked above: read as entities for what `record_response` may change
            leads = {lead.id: lead for lead in await session.scalars(LOAD_LEADS, {"ids": loaded})}
        replied = sorted({message.lead_id for message in by_set if message.lead_id in keys})  # type: ignore[type-var]
        if replied:
            await session.execute(FIRST_REPLY, {"ids": replied, "at": now})
        with txmemo.batch_scope(session):
            txmemo.defer(session, txmemo.APPEND_ROWS)
            for message in open_:
                outcome = outcomes[message.id][1]
                message.status = states[message.id]
                if outcome.status == "retry":
                    message.updated_at = now
                    results[message.id] = _retry_later(message, outcome.error)
                    continue
                _settle(session, message, outcome.status, now, reason=outcome.reason, accepted=outcome.accepted,
                        error=outcome.error)  # fmt: skip
                if message in by_set:
                    ref = keys.get(message.lead_id)  # type: ignore[arg-type]
                    if ref is not None:  # a lead erased meanwhile has no timeline to write to
                        add_event(session, ref, EventType.message_sent, channel=message.channel,
                                  data=message_data(message))  # fmt: skip
                else:
                    lead = leads.get(message.lead_id) if message.lead_id else None
                    if outcome.status == "sent":
                        await record_response(session, message, now, lead=lead)
                    else:
                        await _timeline(session, message, EventType.message_failed, lead)
                results[message.id] = outcome.status
            await txmemo.write_appended(session)
        await _write(session, open_)
    for message_id, status in results.items():
        # a provider's acceptance at debug: the row (sent_at, provider_message_id) and the timeline keep it; at info
        # this line was ~1.5 % of the worker's CPU at 200 leads/s. What went wrong stays at info.
        (log.debug if status == "sent" else log.info)(
            "messaging.settled", message_id=str(message_id), status=status, job_try=job_try
        )
    return results


def _renters(message: OutboundMessage) -> bool:
    """A message to a renter about a lead: it goes on the lead's timeline."""
    return message.lead_id is not None and message.user_id is None


def _first_replies(
    settled: list[OutboundMessage], outcomes: dict[uuid.UUID, tuple[OutboundMessage, Outcome]]
) -> set[OutboundMessage]:
    """The automated replies the provider took, of leads with no other message settled here: their lead's first
    response is written by set (`FIRST_REPLY`), as `record_response` would write it."""
    others = {
        message.lead_id
        for message in settled
        if _renters(message) and (outcomes[message.id][1].status != "sent" or message.kind not in AUTOMATED)
    }
    return {
        message
        for message in settled
        if _renters(message)
        and outcomes[message.id][1].status == "sent"
        and message.kind in AUTOMATED
        and message.lead_id not in others
    }


def _retry_later(message: OutboundMessage, error: ProviderError | None) -> str:
    if message.status != "sending":
        return message.status
    if error is not None:
        message.error_code = error.code
        message.error_message = str(error)[:2000]
        if error.definite:
            message.status = "queued"  # surely not accepted: the retry sends without asking first
    return "retry"


async def record_response(
    session: AsyncSession, message: OutboundMessage, at: datetime, lead: Lead | None = None
) -> None:
    """The timeline entry, and first response recorded twice: automated and human (plus any-kind).

    `lead`: the message's lead, already locked by the caller (else it is read and locked here)."""
    if not _renters(message):
        return
    if lead is None:
        lead = await _timeline(session, message, EventType.message_sent)
        if lead is None:
            return
        await session.refresh(lead, with_for_update=LEAD_LOCK)
    else:
        await _timeline(session, message, EventType.message_sent, lead)
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


async def send_due_messages(ctx: dict[str, Any]) -> int:
    """Cron: queue the send job of every message now due — deferred by quiet hours or `not_before`, whose
    job was lost, or left `sending` by a crash (its job asks the provider before any resend)."""
    async with job_transaction(ctx) as session:
        ids = await due_message_ids(session, clock.now())
        for message_id in ids:  # one job each, under the id a retry's job has: arq's dedup keeps the backoff
            enqueue_after_commit(session, "send_message", str(message_id), job_id=f"send:{message_id}")
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
