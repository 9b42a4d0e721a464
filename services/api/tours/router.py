"""Tours: booking, slots, reschedule/cancel with history, settings, blackouts and calendars.

The paths that existed before (POST/GET /v1/leads/{id}/tours, PATCH /v1/tours/{id}) keep their shapes.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select

from services.api.deps import ManagerDep, PrincipalDep, SessionDep, StateDep
from services.api.leads.deps import LeadDep, LockedLeadDep
from services.api.leads.docs import problem_doc
from services.api.properties.service import get_property
from services.api.tours import calendar, service, setup, slots
from services.api.tours.booking import local_iso
from services.api.tours.schemas import (
    BlackoutIn,
    BlackoutOut,
    CalendarLink,
    SlotOut,
    TourCancel,
    TourCreate,
    TourDetail,
    TourOut,
    TourReschedule,
    TourSettingsIn,
    TourSettingsOut,
    TourSlots,
    TourUpdate,
)
from services.api.types import IsoDate
from shared import clock
from shared.enums import Role, TourStatus, TourType
from shared.errors import NotFound
from shared.models import Property, Tour, User
from shared.service_token import resolve_secret_key
from shared.working_hours import zone

router = APIRouter(tags=["tours"])
ICS = "text/calendar; charset=utf-8"


async def _out(session: SessionDep, tour: Tour) -> TourOut:
    prop = await session.get(Property, tour.property_id) if tour.property_id else None
    out = TourOut.model_validate(tour)
    out.timezone = prop.timezone if prop else None
    out.starts_at_local = local_iso(tour.starts_at, prop)
    return out


@router.post(
    "/v1/leads/{lead_id}/tours", response_model=TourOut, status_code=status.HTTP_201_CREATED, responses=problem_doc(409)
)
async def create_tour(lead: LockedLeadDep, body: TourCreate, principal: PrincipalDep, session: SessionDep) -> TourOut:
    """Book a tour with a `slot` (from tour-slots) or a `starts_at` and optional `agent_id`. The database
    refuses double booking; a clash is a 409 naming it and the nearest free slots. `tour_booked` goes on the
    timeline and the lead moves forward to tour_booked. Lost and leased leads can't book."""
    return await _out(session, await service.create_tour(session, principal, lead, body))


@router.get("/v1/leads/{lead_id}/tours", response_model=list[TourOut])
async def lead_tours(lead: LeadDep, session: SessionDep) -> list[TourOut]:
    return [await _out(session, tour) for tour in await service.lead_tours(session, lead)]


@router.get("/v1/tours/{tour_id}.ics", response_class=Response, responses={200: {"content": {"text/calendar": {}}}})
async def tour_ics(tour_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Response:
    """The tour as an iCalendar file, for confirmations and reminders. (Declared before GET /v1/tours/{id},
    whose path parameter would otherwise take "<id>.ics".)"""
    await service.get_tour(session, principal.org_id, tour_id, principal)  # outside the caller's scope: 404
    body = await calendar.tour_ics(session, principal.org_id, tour_id)
    return Response(body, media_type=ICS, headers={"Content-Disposition": f'attachment; filename="tour-{tour_id}.ics"'})


@router.get("/v1/tours/{tour_id}", response_model=TourDetail)
async def get_tour(tour_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> TourDetail:
    """The tour and its history (booked, rescheduled, canceled, completed, no_show)."""
    tour = await service.get_tour(session, principal.org_id, tour_id, principal)
    base = (await _out(session, tour)).model_dump()
    return TourDetail.model_validate({**base, "history": await service.history(session, tour)})


@router.patch("/v1/tours/{tour_id}", response_model=TourOut, responses=problem_doc(409))
async def update_tour(tour_id: uuid.UUID, body: TourUpdate, principal: PrincipalDep, session: SessionDep) -> TourOut:
    """`completed` (after the start time) moves the lead to toured when that is forward; canceled / no_show
    are logged; a new starts_at or agent_id is a reschedule (same checks as booking)."""
    return await _out(session, await service.update_tour(session, principal, tour_id, body))


@router.post("/v1/tours/{tour_id}/reschedule", response_model=TourOut, responses=problem_doc(409))
async def reschedule_tour(
    tour_id: uuid.UUID, body: TourReschedule, principal: PrincipalDep, session: SessionDep
) -> TourOut:
    update = TourUpdate(starts_at=body.starts_at, agent_id=body.agent_id, reason=body.reason)
    return await _out(session, await service.update_tour(session, principal, tour_id, update))


@router.post("/v1/tours/{tour_id}/cancel", response_model=TourOut, responses=problem_doc(409))
async def cancel_tour(tour_id: uuid.UUID, body: TourCancel, principal: PrincipalDep, session: SessionDep) -> TourOut:
    update = TourUpdate(status=TourStatus.canceled, reason=body.reason)
    return await _out(session, await service.update_tour(session, principal, tour_id, update))


@router.get("/v1/properties/{property_id}/tour-slots", response_model=TourSlots)
async def tour_slots(
    property_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    date: Annotated[
        IsoDate | None, Query(description="local date in the property's timezone; default: today there")
    ] = None,
    type: Annotated[TourType, Query(description="in_person, self_guided or virtual")] = TourType.in_person,
    agent_id: uuid.UUID | None = None,
) -> TourSlots:
    """Free start times from the tour team's working hours, minus tours (length + buffer), blackouts, away
    time and minimum notice."""
    prop = await get_property(session, principal.org_id, property_id)
    rules = await slots.load_rules(session, prop)
    day = date or clock.now().astimezone(zone(prop.timezone)).date()
    found = await slots.free_slots(session, prop, day, type, clock.now(), agent_id=agent_id, rules=rules)
    return TourSlots(
        property_id=prop.id,
        date=day,
        timezone=prop.timezone,
        tour_type=type,
        length_minutes=int(rules.length.total_seconds() // 60),
        buffer_minutes=int(rules.buffer.total_seconds() // 60),
        slots=[
            SlotOut(
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                starts_at_local=local_iso(slot.starts_at, prop) or "",
                agent_ids=slot.agent_ids,
            )
            for slot in found
        ],
    )


@router.get("/v1/properties/{property_id}/tour-settings", response_model=TourSettingsOut)
async def get_tour_settings(property_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> TourSettingsOut:
    return await setup.get_settings(session, principal.org_id, property_id)


@router.put("/v1/properties/{property_id}/tour-settings", response_model=TourSettingsOut)
async def put_tour_settings(
    property_id: uuid.UUID, body: TourSettingsIn, principal: ManagerDep, session: SessionDep
) -> TourSettingsOut:
    return await setup.put_settings(session, principal.org_id, property_id, body)


@router.get("/v1/properties/{property_id}/tour-blackouts", response_model=list[BlackoutOut])
async def list_blackouts(property_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> list[BlackoutOut]:
    return [
        BlackoutOut.model_validate(row) for row in await setup.list_blackouts(session, principal.org_id, property_id)
    ]


@router.post(
    "/v1/properties/{property_id}/tour-blackouts", response_model=BlackoutOut, status_code=status.HTTP_201_CREATED
)
async def add_blackout(
    property_id: uuid.UUID, body: BlackoutIn, principal: ManagerDep, session: SessionDep
) -> BlackoutOut:
    return BlackoutOut.model_validate(await setup.add_blackout(session, principal.org_id, property_id, body))


@router.delete("/v1/tour-blackouts/{blackout_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_blackout(blackout_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> Response:
    await setup.delete_blackout(session, principal.org_id, blackout_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/users/{user_id}/calendar-link", response_model=CalendarLink)
async def calendar_link(
    user_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, state: StateDep
) -> CalendarLink:
    """A subscribable URL for the user's tours (their own; managers and admins: anyone's)."""
    if principal.user_id != user_id and principal.role not in (Role.admin, Role.manager):
        raise NotFound("User not found.")
    if await session.scalar(select(User.id).where(User.id == user_id, User.org_id == principal.org_id)) is None:
        raise NotFound("User not found.")
    token = calendar.feed_token(resolve_secret_key(state.settings), principal.org_id, user_id)
    base = (state.settings.public_url or "").rstrip("/")
    return CalendarLink(url=f"{base}/v1/users/{user_id}/calendar.ics?token={token}", token=token)


@router.get(
    "/v1/users/{user_id}/calendar.ics", response_class=Response, responses={200: {"content": {"text/calendar": {}}}}
)
async def calendar_feed(
    user_id: uuid.UUID,
    session: SessionDep,
    state: StateDep,
    token: Annotated[str | None, Query(description="from GET /v1/users/{id}/calendar-link")] = None,
) -> Response:
    """The user's tours as an iCalendar feed. No API key: the signed token in the URL is the credential
    (without one, or with a bad one, the calendar is not found)."""
    if not token:
        raise NotFound("Calendar not found.")
    org_id = calendar.read_feed_token(resolve_secret_key(state.settings), token, user_id)
    return Response(await calendar.feed_ics(session, org_id, user_id), media_type=ICS)
