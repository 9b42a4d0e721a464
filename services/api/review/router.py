from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import ManagerDep, PrincipalDep, SessionDep
from services.api.owners.scope import lead_scope
from services.api.review import queue
from shared.enums import ReviewStatus

router = APIRouter(prefix="/v1/review-items", tags=["identity"])


class ReviewItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: str
    status: str
    contact_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    inbound_id: uuid.UUID | None
    candidate_contact_ids: list[uuid.UUID]
    reasons: list[Any]
    resolution: str | None
    resolution_note: str | None
    resolved_by_id: uuid.UUID | None
    resolved_at: datetime | None
    merge_id: uuid.UUID | None
    created_at: datetime


class ReviewPage(BaseModel):
    items: list[ReviewItemOut]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="items per status in the organization (an agent: in its scope)")


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["merge", "keep_apart", "resolve"] = Field(
        description="merge / keep_apart for a possible duplicate; "
        "resolve for a sensitive conversation or an automation review"
    )
    survivor_id: uuid.UUID | None = Field(None, description="merge: the contact that stays (default: the item's)")
    field_choices: dict[str, Literal["survivor", "merged"]] = Field(default_factory=dict)
    note: str | None = Field(None, max_length=2000)


@router.get("", response_model=ReviewPage)
async def list_review_items(
    principal: PrincipalDep,
    session: SessionDep,
    status: Annotated[list[ReviewStatus] | None, Query(description="one or more; default open")] = None,
    kind: str | None = None,
    contact_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> ReviewPage:
    """Agents see the items about leads in their scope (an item without a lead: about a person with one)."""
    scope = await lead_scope(session, principal)
    statuses = [str(s) for s in status] if status else ["open"]
    items, next_cursor = await queue.list_items(
        session, principal.org_id, statuses, kind, contact_id, limit, cursor, scope=scope
    )
    counts = await queue.counts(session, principal.org_id, scope)
    return ReviewPage(
        items=[ReviewItemOut.model_validate(item) for item in items], next_cursor=next_cursor, counts=counts
    )


@router.get("/{item_id}", response_model=ReviewItemOut)
async def get_review_item(item_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ReviewItemOut:
    scope = await lead_scope(session, principal)
    return ReviewItemOut.model_validate(await queue.get_item(session, principal.org_id, item_id, scope=scope))


@router.post("/{item_id}/resolve", response_model=ReviewItemOut)
async def resolve_review_item(
    item_id: uuid.UUID, body: ResolveRequest, principal: ManagerDep, session: SessionDep
) -> ReviewItemOut:
    """Merge the candidates into one contact, or keep them apart (remembered: the pair is not asked again)."""
    item = await queue.resolve(
        session,
        principal.org_id,
        item_id,
        action=body.action,
        survivor_id=body.survivor_id,
        field_choices=dict(body.field_choices),
        note=body.note,
        actor_id=principal.user_id,
        scope=await lead_scope(session, principal),
    )
    return ReviewItemOut.model_validate(item)
