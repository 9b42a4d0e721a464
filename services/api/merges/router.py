from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import ManagerDep, PrincipalDep, SessionDep
from services.api.merges import service
from services.api.owners.scope import lead_scope

router = APIRouter(prefix="/v1", tags=["identity"])


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merge_contact_id: uuid.UUID = Field(description="the contact merged away into the one in the path")
    field_choices: dict[str, Literal["survivor", "merged"]] = Field(
        default_factory=dict, description=f"per field of {service.MERGEABLE_FIELDS}: whose value to keep"
    )
    reason: str | None = Field(None, max_length=2000)


class MergeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    field_choices: dict[str, str]
    reason: str | None
    actor_id: uuid.UUID | None
    created_at: datetime
    undone_at: datetime | None
    undone_by_id: uuid.UUID | None


@router.post("/contacts/{contact_id}/merge", status_code=status.HTTP_201_CREATED, response_model=MergeOut)
async def merge_contacts(
    contact_id: uuid.UUID, body: MergeRequest, principal: ManagerDep, session: SessionDep
) -> MergeOut:
    """Merge another contact into this one (identities, leads, timelines). Undo with POST /v1/merges/{id}/undo."""
    merge = await service.merge_contacts(
        session,
        principal.org_id,
        contact_id,
        body.merge_contact_id,
        field_choices=dict(body.field_choices),
        reason=body.reason,
        actor_id=principal.user_id,
    )
    return MergeOut.model_validate(merge)


@router.get("/merges/{merge_id}", response_model=MergeOut)
async def get_merge(merge_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> MergeOut:
    scope = await lead_scope(session, principal)
    return MergeOut.model_validate(await service.get_merge(session, principal.org_id, merge_id, scope=scope))


@router.post("/merges/{merge_id}/undo", response_model=MergeOut)
async def undo_merge(merge_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> MergeOut:
    """Restore both contacts, their identities, leads and timelines exactly as before the merge."""
    return MergeOut.model_validate(await service.undo_merge(session, principal.org_id, merge_id, principal.user_id))
