"""Manual add and invitations: resolve the person by email/phone first, then open (or reuse) their lead."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.contacts.resolution import create_contact, lock_identity_keys, open_lead_for
from services.api.leads.events import add_event
from services.api.leads.refs import ensure_property, ensure_user
from services.api.leads.schemas import LeadCreate
from services.api.leads.service import run_rules, touch
from services.api.owners.assignment import set_owner
from services.api.owners.scope import ensure_reused_lead_in_scope
from shared import clock
from shared.blocklist import blocked_identities
from shared.enums import ContactKind, EventType, LeadStatus, Role
from shared.errors import DuplicateContact, ValidationFailed
from shared.identity import IdentityKeys, identity_keys
from shared.models import Lead
from shared.repositories.identities import find_contact_ids, prefer_email_owner
from shared.schemas.signal import SignalContact

OnDuplicate = Literal["reject", "attach"]
_CONTACT_KEYS = {"first_name", "last_name", "email", "phone", "kind"}


async def _keys(session: AsyncSession, org_id: uuid.UUID, email: str | None, phone: str | None) -> IdentityKeys:
    # one blocklist rule with the intake worker: configured entries, the organization's own numbers and aliases
    blocked = await blocked_identities(session, org_id)
    return identity_keys(SignalContact(email=email, phone=phone), blocked)


async def _existing_lead_id(
    session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID, property_id: uuid.UUID | None
) -> uuid.UUID | None:
    """The lead to point a duplicate at: the open one for this property first, else the newest."""
    same_property = Lead.property_id.is_(None) if property_id is None else Lead.property_id == property_id
    is_open = Lead.status.notin_([LeadStatus.lost, LeadStatus.leased])
    return await session.scalar(
        select(Lead.id)
        .where(Lead.org_id == org_id, Lead.contact_id == contact_id)
        .order_by((same_property & is_open).desc(), is_open.desc(), Lead.created_at.desc())
        .limit(1)
    )


async def _duplicate(
    session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID, property_id: uuid.UUID | None
) -> DuplicateContact:
    lead_id = await _existing_lead_id(session, org_id, contact_id, property_id)
    return DuplicateContact(
        "A contact with this email or phone already exists; retry with on_duplicate=attach to add the lead to it.",
        existing_contact_id=str(contact_id),
        existing_lead_id=str(lead_id) if lead_id else None,
    )


async def create_lead(
    session: AsyncSession, principal: Principal, body: LeadCreate, on_duplicate: OnDuplicate
) -> tuple[Lead, bool]:
    """(lead, created). Raises DuplicateContact (409) for a known email/phone unless attaching."""
    org_id = principal.org_id
    await ensure_property(session, org_id, body.property_id, "body.property_id")
    await ensure_user(session, org_id, body.owner_id, "body.owner_id")
    if not (body.first_name or body.last_name or body.email or body.phone):
        raise ValidationFailed(
            "A lead needs a name, an email or a phone.",
            errors=[{"field": "body", "message": "give first_name, last_name, email or phone"}],
        )
    kind = body.kind or ContactKind.tenant
    source = body.source or "manual"
    keys = await _keys(session, org_id, body.email, body.phone)
    await lock_identity_keys(session, org_id, keys)  # a concurrent add of the same person waits, then sees it
    contact_id = prefer_email_owner(await find_contact_ids(session, org_id, keys))
    if contact_id is not None and on_duplicate != "attach":
        raise await _duplicate(session, org_id, contact_id, body.property_id)
    if contact_id is None:
        full_name = " ".join(part for part in (body.first_name, body.last_name) if part) or None
        try:
            contact = await create_contact(
                session,
                org_id,
                kind=kind,
                full_name=full_name,
                first_name=body.first_name,
                last_name=body.last_name,
                email=body.email,
                phone=body.phone,
                source=source,
                identities=list(keys.usable),
            )
            contact_id = contact.id
        except DuplicateContact as error:  # a concurrent writer claimed the email/phone first
            winner = error.extra.get("existing_contact_id")
            if winner is None:
                raise
            if on_duplicate != "attach":
                raise await _duplicate(session, org_id, uuid.UUID(winner), body.property_id) from error
            contact_id = uuid.UUID(winner)

    fields = body.model_dump(exclude_none=True, exclude=_CONTACT_KEYS | {"property_id"})
    fields.update(kind=kind, source=source, latest_source=source)
    lead, created = await open_lead_for(session, org_id, contact_id, body.property_id, fields)
    if not created:
        await ensure_reused_lead_in_scope(session, principal, lead.id, "body.email" if body.email else "body.phone")
    now = clock.now()
    actor: dict[str, Any] = {"actor_type": "user", "actor_id": principal.user_id, "source": source}
    if created:
        add_event(session, lead, EventType.created, occurred_at=now, data={"manual": True}, **actor)
        if lead.owner_id is None and principal.role == Role.agent and principal.user_id is not None:
            # an agent's own manual add is its own lead (else it could not see what it just added)
            await set_owner(
                session,
                lead,
                principal.user_id,
                now,
                reason="added by hand by its agent",
                strategy="manual",
                actor_id=principal.user_id,
            )
        await run_rules(session, lead, EventType.created, now)
    else:
        filled = {key: value for key, value in fields.items() if getattr(lead, key, None) in (None, [])}
        filled.pop("source", None)
        filled.pop("kind", None)
        if filled:
            for key, value in filled.items():
                setattr(lead, key, value)
            touch(lead)
            add_event(
                session,
                lead,
                EventType.fields_updated,
                occurred_at=now,
                data={"fields": {key: {"to": _plain(value)} for key, value in filled.items()}},
                **actor,
            )
    await session.flush()
    return lead, created


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value) if isinstance(value, uuid.UUID) else value
