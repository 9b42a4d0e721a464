"""Correct a renter's name, email or phone by hand: the same identity rule, locks and conflict answer as intake.

An agent who learns a new number adds it here instead of creating a second guest card. A value another
contact already holds is a 409 naming that contact (merge them instead: two people must not share a key
by an edit). Old identities stay (history, matching of late messages) unless removed explicitly.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.contacts.resolution import claim_identities, lock_identity_keys
from services.api.contacts.service import find_contact, refuse_erased
from services.api.leads.events import add_event
from services.api.owners.scope import ensure_contact_in_scope
from shared.blocklist import blocked_identities
from shared.enums import EventType
from shared.errors import Conflict, DuplicateContact, ValidationFailed
from shared.identity import IdentityKeys, email_identity, phone_identity
from shared.models import Contact, ContactIdentity, Lead, Organization
from shared.models.lead import OPEN_STATUSES_SQL
from shared.repositories.identities import find_contact_ids

EDIT_SOURCE = "manual_edit"


class IdentityRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(pattern="^(email|phone)$")
    value: str = Field(min_length=1, max_length=320)


class ContactUpdate(BaseModel):
    """Only the fields sent change. `email` / `phone` set the primary (added as an identity when new)."""

    model_config = ConfigDict(extra="forbid")
    full_name: str | None = Field(None, max_length=300)
    first_name: str | None = Field(None, max_length=150)
    last_name: str | None = Field(None, max_length=150)
    email: str | None = Field(None, max_length=320, description="the primary email; null clears the primary")
    phone: str | None = Field(None, max_length=64, description="the primary phone; null clears the primary")
    remove_identities: list[IdentityRef] = Field(
        default_factory=list, max_length=50, description="identities to detach (no longer match this renter)"
    )


async def update_contact(
    session: AsyncSession, principal: Principal, contact_id: uuid.UUID, body: ContactUpdate
) -> list[str]:
    """Apply the edit; returns the names of the fields that changed."""
    org_id = principal.org_id
    contact = await _editable_contact(session, principal, contact_id)
    sent = body.model_dump(exclude_unset=True)
    changed: list[str] = []
    for field in ("full_name", "first_name", "last_name"):
        if field in sent and getattr(contact, field) != sent[field]:
            setattr(contact, field, sent[field])
            changed.append(field)

    primaries = await _primaries(session, contact, sent)
    new_keys = await _new_keys(session, contact, primaries)
    if new_keys:
        await lock_identity_keys(session, org_id, IdentityKeys(usable=new_keys))
        held_elsewhere = {
            owner: kinds
            for owner, kinds in (await find_contact_ids(session, org_id, IdentityKeys(usable=new_keys))).items()
            if owner != contact.id
        }
        if held_elsewhere:
            other = next(iter(held_elsewhere))
            raise DuplicateContact(
                "Another contact already has this email or phone; merge the two contacts instead.",
                existing_contact_id=str(other),
                contact_ids=[str(owner) for owner in held_elsewhere],
            )
        await claim_identities(session, org_id, contact.id, new_keys, EDIT_SOURCE)
    for kind, column in (("email", "primary_email"), ("phone", "primary_phone")):
        if kind in primaries:
            value = primaries[kind]
            if getattr(contact, column) != value:
                setattr(contact, column, value)
                changed.append(kind)

    removed = await _remove_identities(session, contact, body.remove_identities)
    if removed:
        changed.append("identities")
    if changed:
        await _record(session, principal, contact, changed)
    await session.flush()
    return changed


async def _editable_contact(session: AsyncSession, principal: Principal, contact_id: uuid.UUID) -> Contact:
    contact = await find_contact(session, principal.org_id, contact_id, for_update=True)
    await ensure_contact_in_scope(session, principal, contact.id)
    refuse_erased(contact)
    if contact.merged_into_id is not None:
        raise Conflict(
            "This contact was merged into another; edit the surviving contact.",
            merged_into_id=str(contact.merged_into_id),
        )
    return contact


async def _primaries(session: AsyncSession, contact: Contact, sent: dict[str, object]) -> dict[str, str | None]:
    """The sent email / phone as stored (E.164 / lowercase; None clears), or a 422 naming the field when one
    cannot identify anyone. The blocklist and the region are read once."""
    raws = {kind: sent[kind] for kind in ("email", "phone") if kind in sent}
    if not any(isinstance(raw, str) for raw in raws.values()):
        return {kind: None for kind in raws}
    blocked = await blocked_identities(session, contact.org_id)
    primaries: dict[str, str | None] = {}
    for kind, raw in raws.items():
        if raw is None:
            primaries[kind] = None
            continue
        if kind == "email":
            value, why = email_identity(raw, blocked)
        else:
            region = await session.scalar(select(Organization.default_country).where(Organization.id == contact.org_id))
            value, why = phone_identity(raw, blocked, region or "US")
        if value is None:
            raise ValidationFailed(
                f"This {kind} cannot be used for a renter.",
                errors=[{"field": f"body.{kind}", "message": why or f"not a valid {kind}"}],
            )
        primaries[kind] = value
    return primaries


async def _new_keys(session: AsyncSession, contact: Contact, primaries: dict[str, str | None]) -> list[tuple[str, str]]:
    """Identities the edit adds: the new primaries the contact does not hold yet."""
    wanted = [(kind, value) for kind, value in primaries.items() if value is not None]
    if not wanted:
        return []
    held = set(
        (
            await session.execute(
                select(ContactIdentity.kind, ContactIdentity.value).where(
                    ContactIdentity.org_id == contact.org_id, ContactIdentity.contact_id == contact.id
                )
            )
        ).all()
    )
    return sorted(key for key in wanted if key not in held)


async def _remove_identities(session: AsyncSession, contact: Contact, refs: list[IdentityRef]) -> int:
    if not refs:
        return 0
    removed = 0
    for index, ref in enumerate(refs):
        value = ref.value.strip().lower() if ref.kind == "email" else ref.value.strip()
        result = await session.execute(
            delete(ContactIdentity).where(
                ContactIdentity.org_id == contact.org_id,
                ContactIdentity.contact_id == contact.id,
                ContactIdentity.kind == ref.kind,
                ContactIdentity.value == value,
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise ValidationFailed(
                "This contact has no such identity.",
                errors=[{"field": f"body.remove_identities.{index}", "message": "not one of the contact's"}],
            )
        removed += 1
        column = "primary_email" if ref.kind == "email" else "primary_phone"
        if getattr(contact, column) == value:  # the primary goes with it: the next one of that kind, if any
            setattr(
                contact,
                column,
                await session.scalar(
                    select(ContactIdentity.value)
                    .where(
                        ContactIdentity.org_id == contact.org_id,
                        ContactIdentity.contact_id == contact.id,
                        ContactIdentity.kind == ref.kind,
                    )
                    .order_by(ContactIdentity.created_at.desc())
                    .limit(1)
                ),
            )
    return removed


async def _record(session: AsyncSession, principal: Principal, contact: Contact, changed: list[str]) -> None:
    """One timeline entry per open lead: which fields changed, never the values (they are personal data)."""
    leads = await session.scalars(
        select(Lead).where(Lead.org_id == contact.org_id, Lead.contact_id == contact.id, text(OPEN_STATUSES_SQL))
    )
    for lead in leads:
        add_event(
            session,
            lead,
            EventType.fields_updated,
            data={"contact_fields": changed},
            actor_type="user",
            actor_id=principal.user_id,
        )
