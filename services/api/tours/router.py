"""Tours of a lead, and updating one (completed → the lead is toured)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from services.api.deps import PrincipalDep, SessionDep
from services.api.leads.deps import LeadDep, LockedLeadDep
from services.api.tours import service
from services.api.tours.schemas import TourCreate, TourOut, TourUpdate

router = APIRouter(tags=["tours"])


@router.post("/v1/leads/{lead_id}/tours", response_model=TourOut, status_code=status.HTTP_201_CREATED)
async def create_tour(lead: LockedLeadDep, body: TourCreate, principal: PrincipalDep, session: SessionDep) -> TourOut:
    """Schedule a tour: `tour_scheduled` on the timeline and the lead moves forward to tour_booked."""
    return TourOut.model_validate(await service.create_tour(session, principal, lead, body))


@router.get("/v1/leads/{lead_id}/tours", response_model=list[TourOut])
async def lead_tours(lead: LeadDep, session: SessionDep) -> list[TourOut]:
    return [TourOut.model_validate(tour) for tour in await service.lead_tours(session, lead)]


@router.patch("/v1/tours/{tour_id}", response_model=TourOut)
async def update_tour(tour_id: uuid.UUID, body: TourUpdate, principal: PrincipalDep, session: SessionDep) -> TourOut:
    """`completed` moves the lead to toured when that is forward; canceled / no_show are logged."""
    return TourOut.model_validate(await service.update_tour(session, principal, tour_id, body))
