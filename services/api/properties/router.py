from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from services.api.deps import ManagerDep, PrincipalDep, SessionDep
from services.api.properties import service
from services.api.properties.schemas import PropertyCreate, PropertyOut, PropertyPage, PropertyUpdate

router = APIRouter(prefix="/v1/properties", tags=["properties"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PropertyOut)
async def create_property(body: PropertyCreate, principal: ManagerDep, session: SessionDep) -> PropertyOut:
    row = await service.create_property(session, principal.org_id, body)
    return PropertyOut.model_validate(row)


@router.get("", response_model=PropertyPage)
async def list_properties(
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
    include_archived: bool = False,
) -> PropertyPage:
    rows, next_cursor = await service.list_properties(session, principal.org_id, limit, cursor, include_archived)
    return PropertyPage(items=[PropertyOut.model_validate(row) for row in rows], next_cursor=next_cursor)


ArchivedQuery = Annotated[bool, Query(description="also find an archived (deleted) property")]


@router.get("/{property_id}", response_model=PropertyOut)
async def get_property(
    property_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, include_archived: ArchivedQuery = False
) -> PropertyOut:
    row = await service.get_property(session, principal.org_id, property_id, include_archived)
    return PropertyOut.model_validate(row)


@router.patch("/{property_id}", response_model=PropertyOut)
async def update_property(
    property_id: uuid.UUID,
    body: PropertyUpdate,
    principal: ManagerDep,
    session: SessionDep,
    include_archived: ArchivedQuery = False,
) -> PropertyOut:
    """With `include_archived=true`, `{"is_archived": false}` restores an archived property."""
    row = await service.update_property(session, principal.org_id, property_id, body, include_archived)
    return PropertyOut.model_validate(row)


@router.delete("/{property_id}", status_code=status.HTTP_204_NO_CONTENT)
async def archive_property(property_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> Response:
    """Archive: the property leaves the working set (GET, PATCH and DELETE answer 404, lists skip it) while
    leads, metrics and history keep pointing at it. `?include_archived=true` finds it again."""
    await service.archive_property(session, principal.org_id, property_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
