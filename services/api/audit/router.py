"""GET /v1/audit: who changed what, newest first (admins and managers)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.api.audit import service
from services.api.deps import ManagerDep, SessionDep
from services.api.types import IsoDateTime

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class AuditActor(BaseModel):
    key_id: uuid.UUID | None
    user_id: uuid.UUID | None
    role: str


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor: AuditActor
    operation: str
    target: dict[str, str]
    fields: list[str]
    status: int
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


@router.get("", response_model=AuditPage)
async def list_audit(
    principal: ManagerDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
    since: Annotated[IsoDateTime | None, Query(alias="from", description="inclusive")] = None,
    until: Annotated[IsoDateTime | None, Query(alias="to", description="exclusive")] = None,
    actor_user_id: uuid.UUID | None = None,
    target_id: Annotated[uuid.UUID | None, Query(description="entries whose path named this id")] = None,
) -> Any:
    rows, next_cursor = await service.list_entries(
        session,
        principal.org_id,
        limit=limit,
        cursor=cursor,
        since=since,
        until=until,
        actor_user_id=actor_user_id,
        target_id=target_id,
    )
    return AuditPage(items=[AuditEntryOut(**service.entry_out(row)) for row in rows], next_cursor=next_cursor)
