"""Floor plans, units (with CSV import), matching units for a lead, and the lead's unit-criteria flags."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from services.api.deps import ManagerDep, PrincipalDep, SessionDep, StateDep
from services.api.leads.deps import LeadDep, LockedLeadDep
from services.api.leads.docs import problem_doc
from services.api.leads.service import touch
from services.api.units import digest_job, importer, ranking, service
from services.api.units.schemas import (
    CriteriaFlags,
    FloorPlanCreate,
    FloorPlanOut,
    FloorPlanUpdate,
    MatchingUnits,
    UnitCreate,
    UnitImportResult,
    UnitOut,
    UnitPage,
    UnitUpdate,
    UnitWriteOut,
)
from shared.enums import UnitStatus
from shared.errors import PayloadTooLarge, ValidationFailed

router = APIRouter(tags=["units"])

MAX_BYTES = 5 * 1024 * 1024


@router.post(
    "/v1/properties/{property_id}/floor-plans",
    response_model=FloorPlanOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_doc(409),
)
async def create_floor_plan(
    property_id: uuid.UUID, body: FloorPlanCreate, principal: ManagerDep, session: SessionDep
) -> FloorPlanOut:
    return FloorPlanOut.model_validate(await service.create_floor_plan(session, principal.org_id, property_id, body))


@router.get("/v1/properties/{property_id}/floor-plans", response_model=list[FloorPlanOut])
async def list_floor_plans(property_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> list[FloorPlanOut]:
    rows = await service.list_floor_plans(session, principal.org_id, property_id)
    return [FloorPlanOut.model_validate(row) for row in rows]


@router.get("/v1/floor-plans/{plan_id}", response_model=FloorPlanOut)
async def get_floor_plan(plan_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> FloorPlanOut:
    return FloorPlanOut.model_validate(await service.get_floor_plan(session, principal.org_id, plan_id))


@router.patch("/v1/floor-plans/{plan_id}", response_model=FloorPlanOut, responses=problem_doc(409))
async def update_floor_plan(
    plan_id: uuid.UUID, body: FloorPlanUpdate, principal: ManagerDep, session: SessionDep
) -> FloorPlanOut:
    return FloorPlanOut.model_validate(await service.update_floor_plan(session, principal.org_id, plan_id, body))


@router.delete("/v1/floor-plans/{plan_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_doc(409))
async def delete_floor_plan(plan_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> Response:
    await service.delete_floor_plan(session, principal.org_id, plan_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/units", response_model=UnitWriteOut, status_code=status.HTTP_201_CREATED, responses=problem_doc(409))
async def create_unit(body: UnitCreate, principal: ManagerDep, session: SessionDep, state: StateDep) -> UnitWriteOut:
    """Add a unit. An available unit reactivates the aged leads it matches (see docs/tours.md)."""
    unit, reactivated = await service.create_unit(
        session, principal.org_id, body, reactivation_days=state.settings.reactivation_after_days
    )
    return UnitWriteOut.model_validate(
        {**UnitOut.model_validate(unit).model_dump(), "reactivated_lead_ids": reactivated}
    )


@router.get("/v1/units", response_model=UnitPage)
async def list_units(
    principal: PrincipalDep,
    session: SessionDep,
    property_id: uuid.UUID | None = None,
    floor_plan_id: uuid.UUID | None = None,
    status: UnitStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> UnitPage:
    rows, next_cursor = await service.list_units(
        session,
        principal.org_id,
        property_id=property_id,
        floor_plan_id=floor_plan_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return UnitPage(items=[UnitOut.model_validate(row) for row in rows], next_cursor=next_cursor)


@router.post(
    "/v1/units/import",
    response_model=UnitImportResult,
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_units(
    request: Request,
    principal: ManagerDep,
    session: SessionDep,
    state: StateDep,
    dry_run: bool = False,
    property_id: uuid.UUID | None = None,
) -> UnitImportResult:
    """Upsert units from CSV (number, floor_plan, rent, available_on, status, property). `dry_run=true`
    reports what would change, including the leads it would reactivate, without saving anything."""
    raw = await request.body()
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge(f"A unit import is at most {MAX_BYTES // (1024 * 1024)} MB.")
    if not raw.strip():
        raise ValidationFailed("The request body is empty.", errors=[{"field": "body", "message": "send the CSV"}])
    report = await importer.import_units(
        session,
        principal.org_id,
        raw,
        dry_run=dry_run,
        property_id=property_id,
        reactivation_days=state.settings.reactivation_after_days,
    )
    return UnitImportResult(**report.__dict__)


@router.get("/v1/units/{unit_id}", response_model=UnitOut)
async def get_unit(unit_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> UnitOut:
    return UnitOut.model_validate(await service.get_unit(session, principal.org_id, unit_id))


@router.patch("/v1/units/{unit_id}", response_model=UnitWriteOut, responses=problem_doc(409))
async def update_unit(
    unit_id: uuid.UUID, body: UnitUpdate, principal: ManagerDep, session: SessionDep, state: StateDep
) -> UnitWriteOut:
    """A unit whose status becomes `available` reactivates the aged leads it matches."""
    unit, reactivated = await service.update_unit(
        session, principal.org_id, unit_id, body, reactivation_days=state.settings.reactivation_after_days
    )
    return UnitWriteOut.model_validate(
        {**UnitOut.model_validate(unit).model_dump(), "reactivated_lead_ids": reactivated}
    )


@router.delete("/v1/units/{unit_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_unit(unit_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> Response:
    await service.delete_unit(session, principal.org_id, unit_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/unit-digest/stop/{token}", response_class=HTMLResponse, tags=["consent"])
async def stop_unit_digest_page(token: str, state: StateDep, session: SessionDep) -> HTMLResponse:
    """The link in every unit digest email: one visit stops the digest (other messages keep coming)."""
    await digest_job.stop_digest(session, state.settings, token)
    return HTMLResponse("<!doctype html><title>Stopped</title><p>You will receive no more daily unit updates.</p>")


@router.post("/v1/unit-digest/stop/{token}", status_code=status.HTTP_204_NO_CONTENT, tags=["consent"])
async def stop_unit_digest(token: str, state: StateDep, session: SessionDep) -> Response:
    """The same, for a client that POSTs."""
    await digest_job.stop_digest(session, state.settings, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/leads/{lead_id}/matching-units", response_model=MatchingUnits)
async def matching_units(
    lead: LeadDep,
    session: SessionDep,
    portfolio: Annotated[
        bool | None, Query(description="every property of the organization; default: the lead's match_portfolio")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MatchingUnits:
    """The lead's property's available and on-notice units, best first, each saying why it matched or fell
    short ("$150 over budget; available 10 days after move-in")."""
    return await ranking.matching_units(session, lead, portfolio=portfolio, limit=limit)


@router.patch("/v1/leads/{lead_id}/unit-criteria", response_model=MatchingUnits)
async def set_unit_criteria(lead: LockedLeadDep, body: CriteriaFlags, session: SessionDep) -> MatchingUnits:
    """Opt the lead into portfolio-wide matching and/or the daily digest of new matching units. Bedrooms,
    budget, move-in and pets are the lead's own fields (PATCH /v1/leads/{id})."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(lead, name, value)
    if changes:
        touch(lead)
    await session.flush()
    return await ranking.matching_units(session, lead, portfolio=None, limit=50)
