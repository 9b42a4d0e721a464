"""The inbox for operators: what arrived, what became of it, and replay after a fix."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from services.api.deps import ManagerDep, PrincipalDep, SessionDep
from services.api.inbound import service
from services.api.inbound.schemas import InboundDetail, InboundPage, InboundSummary, ReplayAccepted
from services.api.owners.scope import lead_scope
from services.api.types import IsoDateTime
from shared.enums import InboundKind, InboundStatus

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])


@router.get("", response_model=InboundPage)
async def list_inbound(
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
    status: InboundStatus | None = None,
    kind: InboundKind | None = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
    received_from: Annotated[IsoDateTime | None, Query(description="inclusive")] = None,
    received_to: Annotated[IsoDateTime | None, Query(description="exclusive")] = None,
) -> InboundPage:
    """Deliveries, newest first. An agent sees those that became leads in its scope (docs/owners.md)."""
    rows, next_cursor = await service.list_inbound(
        session,
        principal.org_id,
        limit=limit,
        cursor=cursor,
        status=status,
        kind=kind.value if kind else None,
        source=source,
        received_from=received_from,
        received_to=received_to,
        scope=await lead_scope(session, principal),
    )
    return InboundPage(items=[InboundSummary.model_validate(row) for row in rows], next_cursor=next_cursor)


@router.get("/{inbound_id}", response_model=InboundDetail)
async def get_inbound(inbound_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> InboundDetail:
    """Status, reason and outcome; the body is shown only as `body_size` (it holds personal data)."""
    scope = await lead_scope(session, principal)  # an agent: deliveries that became its leads
    return InboundDetail.model_validate(await service.get_inbound(session, principal.org_id, inbound_id, scope))


@router.post("/{inbound_id}/replay", status_code=status.HTTP_202_ACCEPTED, response_model=ReplayAccepted)
async def replay_inbound(inbound_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> ReplayAccepted:
    """Process a failed or ignored delivery again (e.g. after a parser fix). 409 when already processed."""
    row, job_id = await service.replay(session, principal.org_id, inbound_id)
    return ReplayAccepted(inbound_id=row.id, status=InboundStatus(row.status), job_id=job_id)
