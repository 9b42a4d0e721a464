"""Messaging reads and writes behind the routers: lead messages, agent sends, providers, templates, consent."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.contacts.service import live_contact
from services.api.messaging import templates
from services.api.messaging.consent import latest_consent, record_consent
from services.api.messaging.outbox import find_template, load_context, queue_message, template_values
from services.api.pagination import decode_cursor, encode_cursor
from shared import clock
from shared.errors import NotFound, ValidationFailed
from shared.models import (
    ConsentRecord,
    Lead,
    MessageTemplate,
    MessagingProvider,
    Notification,
    OutboundMessage,
    Property,
)
from shared.normalize import normalize_email, normalize_phone

SECRET_FIELDS = {"twilio": ("auth_token",), "smtp": ("password",), "record": ()}


def _after(cursor: str | None, created: Any, ident: Any) -> Any:
    if not cursor:
        return None
    values = decode_cursor(cursor)
    try:
        return tuple_(created, ident) < (datetime.fromisoformat(str(values[0])), uuid.UUID(str(values[1])))
    except (ValueError, IndexError) as error:
        raise ValidationFailed(
            "The cursor is not valid.", errors=[{"field": "query.cursor", "message": "malformed"}]
        ) from error


async def lead_messages(
    session: AsyncSession, lead: Lead, limit: int, cursor: str | None
) -> tuple[list[OutboundMessage], str | None]:
    query = select(OutboundMessage).where(
        OutboundMessage.org_id == lead.org_id, OutboundMessage.lead_id == lead.id, OutboundMessage.user_id.is_(None)
    )
    after = _after(cursor, OutboundMessage.created_at, OutboundMessage.id)
    if after is not None:
        query = query.where(after)
    rows = list(
        await session.scalars(
            query.order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = (
        encode_cursor([rows[limit - 1].created_at.isoformat(), rows[limit - 1].id]) if len(rows) > limit else None
    )
    return rows[:limit], next_cursor


async def agent_send(
    session: AsyncSession,
    lead: Lead,
    *,
    user_id: uuid.UUID | None,
    channel: str | None,
    template: str | None,
    body: str | None,
    subject: str | None,
    variables: dict[str, str],
    idempotency_key: str | None,
) -> OutboundMessage:
    if not template and not body:
        raise ValidationFailed(
            "Give a template or a body.", errors=[{"field": "body.body", "message": "template or body required"}]
        )
    templates.check_variables({"body": body, "subject": subject})
    unknown = [name for name in variables if name not in templates.VARIABLES]
    if unknown:
        raise ValidationFailed(
            f"Unknown template variable: {', '.join(unknown)}.",
            errors=[{"field": f"body.variables.{name}", "message": f"unknown variable '{name}'"} for name in unknown],
        )
    if template and not body:
        channels = [channel] if channel else ["sms", "email"]
        found = None
        for option in channels:
            found = found or await find_template(session, lead.org_id, lead.property_id, template, option)
        if found is None:
            raise ValidationFailed(
                f"No template '{template}' for {channel or 'sms or email'}.",
                errors=[{"field": "body.template", "message": "unknown template key"}],
            )
    if body and (channel or "sms") == "sms":
        templates.check_sms_length(body)
    return await queue_message(
        session,
        lead=lead,
        channel=channel,
        template=template,
        body=body,
        subject=subject,
        kind="human",
        reason="sent by a person",
        idempotency_key=f"human:{idempotency_key or uuid.uuid4()}",
        created_by_id=user_id,
        variables=variables,
    )


async def list_providers(session: AsyncSession, org_id: uuid.UUID) -> list[MessagingProvider]:
    return list(
        await session.scalars(
            select(MessagingProvider).where(MessagingProvider.org_id == org_id).order_by(MessagingProvider.channel)
        )
    )


async def set_provider(
    session: AsyncSession, org_id: uuid.UUID, channel: str, body: dict[str, Any]
) -> MessagingProvider:
    provider = body.pop("provider")
    if (channel == "sms" and provider == "smtp") or (channel == "email" and provider == "twilio"):
        raise ValidationFailed(
            f"{provider} cannot send {channel}.",
            errors=[{"field": "body.provider", "message": f"not a {channel} provider"}],
        )
    if provider == "twilio" and not (body.get("from_number") or body.get("messaging_service_sid")):
        raise ValidationFailed(
            "Twilio needs from_number or messaging_service_sid.",
            errors=[{"field": "body.from_number", "message": "from_number or messaging_service_sid required"}],
        )
    secret_names = SECRET_FIELDS[provider]
    secrets = {name: body.pop(name) for name in secret_names if body.get(name) is not None}
    for name in secret_names:
        body.pop(name, None)
    config = {key: value for key, value in body.items() if value is not None}
    now = clock.now()
    sealed = json.dumps(secrets)  # encrypted by the column type (shared.crypto)
    statement = insert(MessagingProvider).values(
        org_id=org_id,
        channel=channel,
        provider=provider,
        config=config,
        secrets=sealed,
        created_at=now,
        updated_at=now,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["org_id", "channel"],
            set_={
                MessagingProvider.provider: provider,
                MessagingProvider.config: config,
                MessagingProvider.secrets: statement.excluded.secrets,
                MessagingProvider.updated_at: now,
            },
        )
    )
    row = await session.get(MessagingProvider, (org_id, channel), populate_existing=True)
    assert row is not None
    return row


async def template_preview(
    session: AsyncSession,
    org_id: uuid.UUID,
    item: MessageTemplate,
    lead_id: uuid.UUID | None,
    overrides: dict[str, str],
) -> dict[str, Any]:
    unknown = [name for name in overrides if name not in templates.VARIABLES]
    if unknown:
        raise ValidationFailed(
            f"Unknown template variable: {', '.join(unknown)}.",
            errors=[{"field": f"body.variables.{name}", "message": f"unknown variable '{name}'"} for name in unknown],
        )
    templates.check_variables({"body": item.body, "subject": item.subject})
    if lead_id is not None:
        lead = await session.scalar(select(Lead).where(Lead.id == lead_id, Lead.org_id == org_id))
        if lead is None:
            raise NotFound("Lead not found.")
        values = template_values(await load_context(session, lead), overrides)
    else:
        values = {name: f"[{name}]" for name in templates.VARIABLES} | overrides
    body = templates.render(item.body, values)
    out: dict[str, Any] = {
        "channel": item.channel,
        "subject": templates.render(item.subject, values) if item.channel == "email" else None,
        "body": body,
        "variables": templates.variables_in(item.body) + templates.variables_in(item.subject),
        "encoding": None,
        "length": None,
        "segments": None,
    }
    if item.channel == "sms":
        length = templates.sms_length(body)
        out.update(encoding=length.encoding, length=length.units, segments=length.segments)
    return out


async def get_template(session: AsyncSession, org_id: uuid.UUID, template_id: uuid.UUID) -> MessageTemplate:
    item = await session.scalar(
        select(MessageTemplate).where(MessageTemplate.id == template_id, MessageTemplate.org_id == org_id)
    )
    if item is None:
        raise NotFound("Template not found.")
    return item


async def check_template(session: AsyncSession, org_id: uuid.UUID, data: dict[str, Any]) -> None:
    templates.check_variables({"body": data.get("body"), "subject": data.get("subject")})
    if data.get("channel") == "sms" and data.get("body"):
        templates.check_sms_length(data["body"])
    if data.get("property_id") is not None:
        found = await session.scalar(
            select(Property.id).where(Property.id == data["property_id"], Property.org_id == org_id)
        )
        if found is None:
            raise NotFound("Property not found.")


async def consent_view(session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID) -> dict[str, Any]:
    contact = await live_contact(session, org_id, contact_id)
    addresses = [a for a in (contact.primary_phone, contact.primary_email) if a]
    rows = list(
        await session.scalars(
            select(ConsentRecord)
            .where(
                ConsentRecord.org_id == org_id,
                (ConsentRecord.contact_id == contact.id) | ConsentRecord.address.in_(addresses),
            )
            .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.created_at.desc())
            .limit(500)
        )
    )
    states = {}
    for channel in ("sms", "email"):
        address = contact.primary_phone if channel == "sms" else contact.primary_email
        state = await latest_consent(session, org_id, channel, contact_id=contact.id, address=address)
        states[channel] = state or (contact.sms_consent if channel == "sms" else contact.email_consent)
    history = [
        {
            "id": row.id,
            "channel": row.channel,
            "state": row.state,
            "source": row.source,
            "detail": row.detail,
            "address_kind": None if row.address is None else ("phone" if row.channel == "sms" else "email"),
            "actor_id": row.actor_id,
            "inbound_id": row.inbound_id,
            "recorded_at": row.recorded_at,
        }
        for row in rows
    ]
    return {"contact_id": contact.id, "sms": states["sms"], "email": states["email"], "history": history}


async def agent_consent(
    session: AsyncSession,
    org_id: uuid.UUID,
    contact_id: uuid.UUID,
    channel: str,
    state: str,
    note: str | None,
    actor_id: uuid.UUID | None,
) -> None:
    contact = await live_contact(session, org_id, contact_id)
    address = contact.primary_phone if channel == "sms" else contact.primary_email
    await record_consent(
        session,
        org_id,
        channel=channel,
        state=state,
        source="agent",
        contact_id=contact.id,
        address=address,
        detail=note,
        actor_id=actor_id,
    )


async def import_consent(session: AsyncSession, org_id: uuid.UUID, rows: list[Any], country: str) -> dict[str, Any]:
    recorded, rejected = 0, []
    for index, row in enumerate(rows):
        if row.channel == "sms":
            address, _ = normalize_phone(row.address, country)
        else:
            address = normalize_email(row.address)
        if not address:
            rejected.append(
                {"row": index, "field": f"body.rows.{index}.address", "message": f"not a valid {row.channel} address"}
            )
            continue
        contact_id = await _contact_for(session, org_id, "phone" if row.channel == "sms" else "email", address)
        await record_consent(
            session,
            org_id,
            channel=row.channel,
            state=row.state,
            source="import",
            contact_id=contact_id,
            address=address,
            at=row.recorded_at,
        )
        recorded += 1
    return {"recorded": recorded, "rejected": rejected}


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


async def _contact_for(session: AsyncSession, org_id: uuid.UUID, kind: str, value: str) -> uuid.UUID | None:
    from shared.models import ContactIdentity

    return await session.scalar(
        select(ContactIdentity.contact_id).where(
            ContactIdentity.org_id == org_id, ContactIdentity.kind == kind, ContactIdentity.value == value
        )
    )


async def notifications_page(
    session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID, unread_only: bool, limit: int, cursor: str | None
) -> tuple[list[Notification], str | None, int]:
    base = select(Notification).where(Notification.org_id == org_id, Notification.user_id == user_id)
    if unread_only:
        base = base.where(Notification.read_at.is_(None))
    after = _after(cursor, Notification.created_at, Notification.id)
    query = base.where(after) if after is not None else base
    rows = list(
        await session.scalars(query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit + 1))
    )
    next_cursor = (
        encode_cursor([rows[limit - 1].created_at.isoformat(), rows[limit - 1].id]) if len(rows) > limit else None
    )
    unread = await session.scalar(
        select(func.count()).where(
            Notification.org_id == org_id, Notification.user_id == user_id, Notification.read_at.is_(None)
        )
    )
    return rows[:limit], next_cursor, int(unread or 0)


async def mark_read(
    session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID, notification_id: uuid.UUID | None
) -> int:
    now = clock.now()
    statement = update(Notification).where(
        Notification.org_id == org_id, Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        exists = await session.scalar(
            select(Notification.id).where(
                Notification.id == notification_id, Notification.org_id == org_id, Notification.user_id == user_id
            )
        )
        if exists is None:
            raise NotFound("Notification not found.")
        statement = statement.where(Notification.id == notification_id)
    result = await session.execute(statement.values(read_at=now, updated_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
