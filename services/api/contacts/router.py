"""Contacts: one person with every email/phone seen for them and all their leads."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from services.api.contacts import edit, erase, service
from services.api.contacts.schemas import ContactOut
from services.api.deps import ManagerDep, PrincipalDep, SessionDep
from services.api.leads.docs import problem_doc
from services.api.owners.scope import lead_scope

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])


@router.get("/{contact_id}", response_model=ContactOut, responses=problem_doc(410))
async def get_contact(contact_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ContactOut:
    scope = await lead_scope(session, principal)
    return await service.get_contact(session, principal.org_id, contact_id, scope=scope)


@router.patch("/{contact_id}", response_model=ContactOut, responses=problem_doc(409, 410))
async def update_contact(
    contact_id: uuid.UUID, body: edit.ContactUpdate, principal: PrincipalDep, session: SessionDep
) -> ContactOut:
    """Correct the renter's name, set a new primary email or phone, or detach a wrong one.

    A new email or phone is checked by the same rule as intake (placeholders, relays, blocklist: 422 naming the
    field) and becomes an identity, so the renter's next message matches this contact. If another contact
    already holds it, the answer is 409 with `existing_contact_id`: merge the two instead.
    """
    await edit.update_contact(session, principal, contact_id, body)
    scope = await lead_scope(session, principal)
    return await service.get_contact(session, principal.org_id, contact_id, scope=scope)


class ErasedOut(BaseModel):
    contact_ids: list[uuid.UUID]
    lead_count: int
    identities_removed: int
    inbound_scrubbed: int


@router.delete("/{contact_id}", response_model=ErasedOut)
async def erase_contact(contact_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> ErasedOut:
    """Erase the renter's personal data on request (names, identities, message bodies, raw payloads).

    Lead rows, statuses, sources, owners and event types and times stay, so metrics do not change; the
    contact row stays too, marked erased: reading, editing or its consent answer 410 from then on (a repeated
    DELETE answers 200). Contacts merged into it are the same person and are erased with it; merges involving
    them can no longer be undone. Irreversible.
    """
    erased = await erase.erase_contact(session, principal.org_id, contact_id)
    return ErasedOut(**erased.__dict__)
