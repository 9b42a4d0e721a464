"""The outbox: every SMS and email is a row first, decided in the caller's transaction, sent after commit.

`queue_message` decides consent, automation pause, quiet hours and duplicates at decision time and writes the
row (queued, or suppressed with the reason); the worker's `send_message` checks consent and pause again at
send time. See docs/messaging.md for the states and why nothing is sent twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.configcache import detached_copy
from services.api.leads.events import add_event
from services.api.messaging import templates
from services.api.messaging.consent import is_opted_out
from services.api.messaging.quiet_hours import is_quiet, next_allowed
from shared import clock
from shared.enums import EventType, LeadStatus
from shared.logging import get_logger
from shared.models import (
    Contact,
    Lead,
    MessageTemplate,
    MessagingProvider,
    MessagingSettings,
    Notification,
    Organization,
    OutboundMessage,
    Property,
    User,
)
from shared.repositories import rows

log = get_logger(__name__)
T = TypeVar("T")

KINDS = ("reply", "proactive", "human", "notification")
AUTOMATED = frozenset({"reply", "proactive"})
# the neutral acknowledgement of a sensitive conversation is the one automated text a paused lead still gets
PAUSE_EXEMPT_TEMPLATES = frozenset({"sensitive_ack"})
CLOSED = frozenset({LeadStatus.lost, LeadStatus.leased})
UNSUBSCRIBE_PURPOSE = "unsubscribe"
UNSUBSCRIBE_TTL = timedelta(days=365)


@dataclass
class LeadContext:
    lead: Lead
    contact: Contact
    org: Organization
    prop: Property | None
    settings: MessagingSettings | None
    owner: User | None

    @property
    def timezone(self) -> str:
        return self.prop.timezone if self.prop is not None else self.org.timezone


async def load_context(session: AsyncSession, lead: Lead) -> LeadContext:
    """The renter is read each time; the organization's rows once per intake batch (services/api/txmemo.py)."""
    contact = await session.get(Contact, lead.contact_id)
    org = await _get(session, lead.org_id, Organization, lead.org_id)
    assert contact is not None and org is not None
    prop = await _get(session, lead.org_id, Property, lead.property_id) if lead.property_id else None
    settings = await messaging_settings(session, lead.org_id)
    owner = await _get(session, lead.org_id, User, lead.owner_id) if lead.owner_id else None
    return LeadContext(lead, contact, org, prop, settings, owner)


async def messaging_settings(session: AsyncSession, org_id: uuid.UUID) -> MessagingSettings | None:
    return await _get(session, org_id, MessagingSettings, org_id)


async def _get(session: AsyncSession, org_id: uuid.UUID, model: type[T], key: uuid.UUID) -> T | None:
    """session.get, remembered for an intake batch (an absent row too, which the identity map cannot keep), and
    across batches while the organization's configuration is unchanged (a copy off the session: batches share it).
    """

    async def load() -> T | None:
        row = await session.get(model, key)
        return detached_copy(row) if row is not None and txmemo.in_batch(session) else row

    return await txmemo.remember_config(session, org_id, ("messaging.get", model.__name__, key), load)


def help_text(ctx_org: Organization, settings: MessagingSettings | None) -> str:
    if settings is not None and settings.help_text:
        return settings.help_text
    return templates.DEFAULT_HELP_TEXT.format(organization=ctx_org.name)


def template_values(ctx: LeadContext, extra: dict[str, str] | None = None) -> dict[str, str]:
    values = {
        "first_name": ctx.contact.first_name or "there",
        "last_name": ctx.contact.last_name or "",
        "property_name": ctx.prop.name if ctx.prop else ctx.org.name,
        "unit": ctx.lead.unit_type or "",
        "tour_time": "",
        "application_link": application_link(ctx),
        "agent_name": ctx.owner.name if ctx.owner else ctx.org.name,
        "organization_name": ctx.org.name,
        "help_text": help_text(ctx.org, ctx.settings),
        "unsubscribe_link": "",
    }
    values.update(extra or {})
    return values


def application_link(ctx: LeadContext) -> str:
    """The property's application URL, else the organization's default, else nothing (the step is not sent)."""
    return (
        (ctx.prop.application_url if ctx.prop else None)
        or (ctx.settings.application_url if ctx.settings else None)
        or ""
    )


async def missing_application_link(session: AsyncSession, lead: Lead, template: str, channel: str) -> bool:
    """True when this template, as it would be chosen for the lead, needs an application link nobody has set."""
    found = await find_template(session, lead.org_id, lead.property_id, template, channel)
    if found is None or "application_link" not in templates.variables_in(f"{found[0] or ''} {found[1]}"):
        return False
    prop = await _get(session, lead.org_id, Property, lead.property_id) if lead.property_id else None
    settings = await messaging_settings(session, lead.org_id)
    return not ((prop.application_url if prop else None) or (settings.application_url if settings else None))


async def find_template(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None, key: str, channel: str
) -> tuple[str | None, str] | None:
    """The property's template, else the organization's, else the built-in default.

    One read covers the key and its legacy name, and the answer is kept for the transaction (a decision
    and its rendering ask for the same template)."""
    cache: dict[tuple[Any, ...], tuple[str | None, str] | None] = session.info.setdefault("message_templates", {})
    cache_key = (org_id, property_id, key, channel)
    if cache_key not in cache:
        cache[cache_key] = await txmemo.remember_config(
            session,
            org_id,
            ("messaging.template", *cache_key),
            lambda: _find_template(session, org_id, property_id, key, channel),
        )
    return cache[cache_key]


async def _find_template(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None, key: str, channel: str
) -> tuple[str | None, str] | None:
    legacy = templates.LEGACY_KEYS.get(key) if (key, channel) in templates.DEFAULTS else None
    rows = list(
        await session.execute(
            select(
                MessageTemplate.key, MessageTemplate.property_id, MessageTemplate.subject, MessageTemplate.body
            ).where(
                MessageTemplate.org_id == org_id,
                MessageTemplate.key.in_([key, legacy] if legacy else [key]),
                MessageTemplate.channel == channel,
                (MessageTemplate.property_id == property_id) | MessageTemplate.property_id.is_(None),
            )
        )
    )
    rows.sort(key=lambda row: row.property_id is None)  # the property's before the organization's
    own = [row for row in rows if row.key == key]
    if own:
        return own[0].subject, own[0].body
    if legacy is not None:
        customized = next(((row.subject, row.body) for row in rows if row.key == legacy), None)
        if customized is not None and customized != templates.DEFAULTS.get((legacy, channel)):
            return customized
    return templates.DEFAULTS.get((key, channel))


async def best_channel(session: AsyncSession, org_id: uuid.UUID, contact: Contact) -> str:
    """SMS when the renter has a phone that may be texted, else email, else whatever they have."""
    for channel, address in (("sms", contact.primary_phone), ("email", contact.primary_email)):
        if address and not await is_opted_out(session, org_id, channel, contact=contact, address=address):
            return channel
    return "sms" if contact.primary_phone else "email"


async def queue_message(
    session: AsyncSession,
    *,
    lead: Lead,
    channel: str | None = None,
    template: str | None = None,
    body: str | None = None,
    subject: str | None = None,
    kind: str,
    reason: str,
    rule: dict[str, Any] | None = None,
    idempotency_key: str,
    not_before: datetime | None = None,
    created_by_id: uuid.UUID | None = None,
    variables: dict[str, str] | None = None,
) -> OutboundMessage:
    """Decide and write one message to the renter of `lead`; the send job is queued after commit."""
    assert kind in KINDS, kind
    # the same decision again (same key) is answered by the insert's ON CONFLICT with the row already there:
    # no read first, since nearly every decision is a new one
    now = clock.now()
    ctx = await load_context(session, lead)
    channel = channel or await best_channel(session, lead.org_id, ctx.contact)
    to_address = ctx.contact.primary_phone if channel == "sms" else ctx.contact.primary_email
    values = template_values(ctx, variables)
    if template is not None and body is None:
        found = await find_template(session, lead.org_id, lead.property_id, template, channel)
        if found is not None:
            subject = subject if subject is not None else found[0]
            body = found[1]
    needs_link = "application_link" in templates.variables_in(f"{subject or ''} {body or ''}")
    text = templates.render(body, values)
    subject_text = templates.render(subject, values) if channel == "email" else None
    if channel == "email" and not subject_text:
        subject_text = f"{values['property_name']}"

    status, why, warning = "queued", reason, None
    suppressed = await _suppression(session, ctx, channel, to_address, text, kind, template)
    if suppressed is None and needs_link and not values["application_link"]:
        suppressed = "no_application_link"
    if suppressed is not None:
        status, why = "suppressed", suppressed
    elif channel == "sms" and kind == "proactive":
        wanted = max(now, not_before) if not_before else now
        allowed = next_allowed(wanted, ctx.timezone, ctx.settings.quiet_hours if ctx.settings else None)
        not_before = allowed if allowed > now else None
    elif channel == "sms" and kind == "human" and is_quiet(now, ctx.timezone, _quiet(ctx)):
        warning = "quiet_hours"
    headers = email_headers(ctx, channel) if channel == "email" else {}
    message, inserted = await _insert(
        session,
        org_id=lead.org_id,
        lead_id=lead.id,
        contact_id=lead.contact_id,
        user_id=None,
        channel=channel,
        kind=kind,
        status=status,
        reason=why,
        template=template,
        rule=rule,
        idempotency_key=idempotency_key,
        to_address=to_address,
        subject=subject_text,
        body=text,
        headers=headers,
        warning=warning,
        not_before=not_before,
        created_by_id=created_by_id,
        now=now,
    )
    if inserted:  # ours, not a concurrent twin's
        add_event(
            session,
            lead,
            EventType.message_suppressed if status == "suppressed" else EventType.message_queued,
            actor_type="user" if created_by_id else "system",
            actor_id=created_by_id,
            channel=channel,
            data=message_data(message),
        )
        # debug: the outbox row and the timeline keep every decision with its reason; at info this line cost
        # ~6 % of applying an intake batch (two decisions per new renter)
        log.debug("messaging.decided", message_id=str(message.id), lead_id=str(lead.id), status=status, reason=why)
    return message


def _quiet(ctx: LeadContext) -> dict[str, Any] | None:
    return ctx.settings.quiet_hours if ctx.settings else None


async def _suppression(
    session: AsyncSession,
    ctx: LeadContext,
    channel: str,
    to_address: str | None,
    text: str,
    kind: str,
    template: str | None,
) -> str | None:
    if not to_address:
        return "no_address"
    if not text.strip():
        return "empty_body"
    if await is_opted_out(session, ctx.lead.org_id, channel, contact=ctx.contact, address=to_address):
        return "opted_out"
    if kind in AUTOMATED and ctx.lead.automation_paused_at is not None and template not in PAUSE_EXEMPT_TEMPLATES:
        return f"automation_paused: {ctx.lead.automation_paused_reason or 'paused'}"
    if kind == "proactive" and ctx.lead.status in CLOSED:
        return "lead_closed"
    return None


def email_headers(ctx: LeadContext, channel: str) -> dict[str, str]:
    """Reply-To the organization's inbound address (the renter's answer comes back through email intake);
    Message-ID is added at send time from our message id, so a reply's In-Reply-To finds the lead."""
    headers: dict[str, str] = {}
    reply_to = (ctx.prop.inbound_alias if ctx.prop else None) or (ctx.settings.inbound_email if ctx.settings else None)
    if reply_to:
        headers["Reply-To"] = reply_to
    return headers


_INSERT_MESSAGE = rows.insert_statement(
    OutboundMessage.__table__, conflict=("org_id", "idempotency_key"), returning="id"
)


async def _by_key(session: AsyncSession, org_id: uuid.UUID, key: str) -> OutboundMessage | None:
    return await session.scalar(
        select(OutboundMessage).where(OutboundMessage.org_id == org_id, OutboundMessage.idempotency_key == key)
    )


def _message_row(now: datetime, values: dict[str, Any]) -> dict[str, Any]:
    """An outbound row with every column: a new id, and the time stamp of its status (queued or suppressed)."""
    stamps = {"queued_at": now} if values["status"] == "queued" else {"suppressed_at": now}
    return rows.full_row(
        OutboundMessage,
        {"id": uuid.uuid4(), "direction": "outbound", "created_at": now, "updated_at": now, **stamps, **values},
    )


async def _insert(session: AsyncSession, *, now: datetime, **values: Any) -> tuple[OutboundMessage, bool]:
    """INSERT … ON CONFLICT DO NOTHING: two racing deciders with one key make one row."""
    status = values["status"]
    row = _message_row(now, values)
    pending = txmemo.pending_keyed(session)
    message: OutboundMessage | None
    if pending is not None:  # a batch's single savepoint: written with its flush, one INSERT for the batch
        key = ("outbound", values["org_id"], values["idempotency_key"])
        if key in pending:
            return pending[key], False
        message = pending[key] = OutboundMessage(**row)
        session.add(message)
        inserted = True
    else:
        # a prebuilt statement (shared/repositories/rows.py); the winner keeps the row it wrote, with no read
        # back; only a loser looks the row up by its key
        inserted = (await session.execute(_INSERT_MESSAGE, row)).scalar() is not None
        message = (
            rows.attach(session, OutboundMessage, row)
            if inserted
            else await _by_key(session, values["org_id"], values["idempotency_key"])
        )
    assert message is not None
    if inserted and status == "queued" and (message.not_before is None or message.not_before <= now):
        enqueue_send(session, message.id)
    return message, inserted


def enqueue_send(session: AsyncSession, message_id: uuid.UUID) -> None:
    from shared.queue import enqueue_after_commit

    # the sends one transaction queued go as one `send_messages` job (claimed, sent and settled together)
    enqueue_after_commit(session, "send_message", str(message_id), job_id=f"send:{message_id}", batch="send_messages")


@dataclass(frozen=True)
class StaffEmail:
    """A notification email to a staff member (`queue_staff_emails`)."""

    org_id: uuid.UUID
    user: User
    lead_id: uuid.UUID | None
    subject: str
    body: str
    idempotency_key: str
    reason: str


async def queue_staff_emails(session: AsyncSession, emails: list[StaffEmail]) -> None:
    """Notification emails to staff through the same outbox (no renter consent applies), in one statement.

    A repeat of a key is a no-op (ON CONFLICT DO NOTHING); a new row's send is queued after commit."""
    if not emails:
        return
    now = clock.now()
    rows_out = [
        _message_row(
            now,
            {
                "org_id": email.org_id,
                "lead_id": email.lead_id,
                "contact_id": None,
                "user_id": email.user.id,
                "channel": "email",
                "kind": "notification",
                "status": "queued" if email.user.email else "suppressed",
                "reason": email.reason if email.user.email else "no_address",
                "template": None,
                "rule": None,
                "idempotency_key": email.idempotency_key,
                "to_address": email.user.email,
                "subject": email.subject,
                "body": email.body,
                "headers": {},
                "warning": None,
                "not_before": None,
                "created_by_id": None,
            },
        )
        for email in emails
    ]
    inserted = set((await session.execute(_INSERT_MESSAGE, rows_out)).scalars())
    for row in rows_out:
        if row["id"] in inserted:
            rows.attach(session, OutboundMessage, row)
            if row["status"] == "queued":
                enqueue_send(session, row["id"])


async def suppress_pending(
    session: AsyncSession, lead_id: uuid.UUID, *, reason: str, kinds: tuple[str, ...] = ("proactive",)
) -> int:
    """Cancel this lead's queued messages of these kinds (a renter's reply cancels the follow-up)."""
    now = clock.now()
    rows = (
        await session.scalars(
            update(OutboundMessage)
            .where(
                OutboundMessage.lead_id == lead_id,
                OutboundMessage.status == "queued",
                OutboundMessage.kind.in_(kinds),
                OutboundMessage.user_id.is_(None),
            )
            .values(status="suppressed", reason=reason, suppressed_at=now, updated_at=now)
            .returning(OutboundMessage)
            # the returned rows as written: a row of this transaction already in the session shows its new status
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    ).all()
    if rows:
        lead = await session.get(Lead, lead_id)
        if lead is not None:
            for message in rows:
                add_event(
                    session, lead, EventType.message_suppressed, channel=message.channel, data=message_data(message)
                )
    return len(rows)


def message_data(message: OutboundMessage) -> dict[str, Any]:
    """What the timeline shows about a message (never the address)."""
    return {
        "message_id": str(message.id),
        "channel": message.channel,
        "direction": message.direction,
        "kind": message.kind,
        "status": message.status,
        "reason": message.reason,
        "template": message.template,
        "rule": message.rule,
        "warning": message.warning,
        "not_before": message.not_before.isoformat() if message.not_before else None,
    }


async def provider_for(session: AsyncSession, org_id: uuid.UUID, channel: str) -> MessagingProvider | None:
    return await session.get(MessagingProvider, (org_id, channel))


async def erase_messages(
    session: AsyncSession, org_id: uuid.UUID, contact_ids: list[uuid.UUID], lead_ids: list[uuid.UUID]
) -> None:
    """Erasure on request: message texts and addresses go (queued ones are suppressed first); the rows, their
    states and times stay for the counts. Consent records stay: an opt-out is what keeps the number quiet."""
    now = clock.now()
    mine = (OutboundMessage.org_id == org_id) & (
        OutboundMessage.contact_id.in_(contact_ids) | OutboundMessage.lead_id.in_(lead_ids)
    )
    await session.execute(
        update(OutboundMessage)
        .where(mine, OutboundMessage.status == "queued")
        .values(status="suppressed", reason="erased", suppressed_at=now)
    )
    await session.execute(
        update(OutboundMessage)
        .where(mine)
        .values(body="", subject=None, to_address=None, headers={}, error_message=None, updated_at=now)
    )
    await session.execute(
        update(Notification)
        .where(Notification.org_id == org_id, Notification.lead_id.in_(lead_ids))
        .values(title="(erased)", body="", data={}, updated_at=now)
    )
