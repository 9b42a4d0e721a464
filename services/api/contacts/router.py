"""Contacts: one person with every email/phone seen for them and all their leads."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.api.contacts import service
from services.api.contacts.schemas import ContactOut
from services.api.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])


@router.get("/{contact_id}", response_model=ContactOut)
async def get_contact(contact_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ContactOut:
    return await service.get_contact(session, principal.org_id, contact_id)
