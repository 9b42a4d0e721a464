from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.api.deps import PrincipalDep, SessionDep
from services.api.mits.render import render_leads
from services.api.owners.scope import lead_scope

router = APIRouter(prefix="/v1/leads", tags=["integrations"])
XML = {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "MITS LeadManagement XML"}
MAX_BATCH = 200


@router.get("/mits", response_class=Response, responses={200: XML})
async def leads_as_mits(
    principal: PrincipalDep,
    session: SessionDep,
    id: Annotated[list[uuid.UUID], Query(min_length=1, max_length=MAX_BATCH, description="repeatable lead id")],
) -> Response:
    """Several leads as one MITS LeadManagement document (one Prospect each), for a PMS that speaks MITS."""
    scope = await lead_scope(session, principal)
    return Response(await render_leads(session, principal.org_id, id, scope), media_type="application/xml")


@router.get("/{lead_id}/mits", response_class=Response, responses={200: XML})
async def lead_as_mits(lead_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Response:
    """The lead as a MITS LeadManagement guest card."""
    scope = await lead_scope(session, principal)
    return Response(await render_leads(session, principal.org_id, [lead_id], scope), media_type="application/xml")
