"""Tours: booking one moves the lead to tour_booked, completing it to toured (forward only).

Every change keeps history twice: a `tour_changes` row (what the tour was and became) and a timeline event
the automation engine listens to (tour_booked, tour_rescheduled, tour_canceled, tour_completed, tour_no_show,
each with tour_id, starts_at and agent_id in data).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.leads import status as lead_status
from services.api.leads.deps import load_lead
from services.api.leads.events import add_event, add_status_event
from services.api.leads.refs import ensure_user
from services.api.leads.service import record_touch, run_rules, touch
from services.api.owners.scope import lead_in_scope
from services.api.tours.booking import flush_or_conflict, invalid, place, read_time
from services.api.tours.schemas import TourCreate, TourUpdate
from shared import clock
from shared.enums import EventType, LeadStatus, TourStatus, TourType
from shared.errors import Conflict, NotFound
from shared.models import Lead, Property, Tour, TourChange, Unit

_STATUS_EVENTS = {
    TourStatus.completed: EventType.tour_completed,
    TourStatus.canceled: EventType.tour_canceled,
    TourStatus.no_show: EventType.tour_no_show,
    TourStatus.scheduled: EventType.tour_booked,
}
# status moves a tour may make; completed and no_show also wait for the start time
_MOVES: dict[TourStatus, frozenset[TourStatus]] = {
    TourStatus.scheduled: frozenset({TourStatus.completed, TourStatus.no_show, TourStatus.canceled}),
    TourStatus.no_show: frozenset({TourStatus.completed}),
    TourStatus.canceled: frozenset({TourStatus.scheduled}),
    TourStatus.completed: frozenset({TourStatus.no_show}),
}


def tour_data(tour: Tour) -> dict[str, Any]:
    return {
        "tour_id": str(tour.id),
        "starts_at": tour.starts_at.isoformat(),
        "ends_at": tour.ends_at.isoformat(),
        "tour_type": tour.tour_type,
        "agent_id": str(tour.agent_id) if tour.agent_id else None,
        "property_id": str(tour.property_id) if tour.property_id else None,
        "unit_id": str(tour.unit_id) if tour.unit_id else None,
    }


async def _property(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None) -> Property | None:
    if property_id is None:
        return None
    return await session.scalar(select(Property).where(Property.id == property_id, Property.org_id == org_id))


async def _ensure_unit(session: AsyncSession, org_id: uuid.UUID, unit_id: uuid.UUID | None) -> None:
    if unit_id is None:
        return
    if await session.scalar(select(Unit.id).where(Unit.id == unit_id, Unit.org_id == org_id)) is None:
        raise invalid("body.unit_id", "not a unit of this organization")


def _refuse_closed(lead: Lead, what: str) -> None:
    if LeadStatus(lead.status) in lead_status.CLOSED:
        raise Conflict(f"A {lead.status} lead can't {what}; reopen it first.", lead_status=lead.status)


def _change(tour: Tour, kind: str, principal: Principal, now: datetime, **values: Any) -> TourChange:
    return TourChange(
        id=uuid.uuid4(),
        org_id=tour.org_id,
        tour_id=tour.id,
        kind=kind,
        sequence=tour.sequence,
        actor_id=principal.user_id,
        occurred_at=now,
        **values,
    )


async def create_tour(session: AsyncSession, principal: Principal, lead: Lead, body: TourCreate) -> Tour:
    _refuse_closed(lead, "book a tour")
    if body.slot is not None and body.starts_at is not None:
        raise invalid("body.slot", "send a slot or a starts_at, not both")
    wanted, field = (body.slot, "body.slot") if body.slot is not None else (body.starts_at, "body.starts_at")
    if wanted is None:
        raise invalid("body.starts_at", "a starts_at (with agent_id) or a slot is required")
    await ensure_user(session, principal.org_id, body.agent_id, "body.agent_id")
    await _ensure_unit(session, principal.org_id, body.unit_id)
    prop = await _property(session, principal.org_id, lead.property_id)
    starts_at = read_time(wanted, prop, field)
    now = clock.now()
    placement = await place(
        session,
        org_id=lead.org_id,
        prop=prop,
        starts_at=starts_at,
        tour_type=body.tour_type,
        agent_id=body.agent_id,
        preferred=lead.owner_id,
        now=now,
        field=field,
        agent_field="body.agent_id",
    )
    tour = Tour(
        id=uuid.uuid4(),
        org_id=lead.org_id,
        lead_id=lead.id,
        property_id=lead.property_id,
        unit_id=body.unit_id,
        starts_at=starts_at,
        ends_at=placement.ends_at,
        busy_until=placement.busy_until,
        status=TourStatus.scheduled,
        tour_type=body.tour_type,
        agent_id=placement.agent_id,
        notes=body.notes,
        sequence=0,
        created_at=now,
        updated_at=now,
    )
    await flush_or_conflict(session, tour, prop, now, field, new=True)
    session.add(
        _change(
            tour,
            "booked",
            principal,
            now,
            to_starts_at=starts_at,
            to_agent_id=tour.agent_id,
            to_status=TourStatus.scheduled,
        )
    )
    add_event(
        session,
        lead,
        EventType.tour_booked,
        occurred_at=now,
        actor_type="user",
        actor_id=principal.user_id,
        data=tour_data(tour),
    )
    # the pipeline knows a booking as tour_scheduled (forward to tour_booked, never backward)
    await record_touch(session, principal, lead, EventType.tour_scheduled, now, data=tour_data(tour))
    await session.flush()
    return tour


async def lead_tours(session: AsyncSession, lead: Lead) -> list[Tour]:
    query = select(Tour).where(Tour.lead_id == lead.id, Tour.org_id == lead.org_id).order_by(Tour.starts_at.desc())
    return list((await session.scalars(query.limit(1000))).all())


async def get_tour(
    session: AsyncSession, org_id: uuid.UUID, tour_id: uuid.UUID, principal: Principal | None = None
) -> Tour:
    """The tour, or a 404 when it is another organization's or (given the caller) outside the caller's scope."""
    tour = await session.scalar(select(Tour).where(Tour.id == tour_id, Tour.org_id == org_id))
    if tour is None or (principal is not None and not await lead_in_scope(session, principal, tour.lead_id)):
        raise NotFound("Tour not found.")
    return tour


async def history(session: AsyncSession, tour: Tour) -> list[TourChange]:
    query = select(TourChange).where(TourChange.tour_id == tour.id, TourChange.org_id == tour.org_id)
    return list((await session.scalars(query.order_by(TourChange.sequence, TourChange.occurred_at))).all())


async def update_tour(session: AsyncSession, principal: Principal, tour_id: uuid.UUID, body: TourUpdate) -> Tour:
    found = await get_tour(session, principal.org_id, tour_id, principal)
    lead = await load_lead(session, principal.org_id, found.lead_id, lock=True)  # lead first, as booking does
    tour = await session.scalar(
        select(Tour).where(Tour.id == tour_id).with_for_update().execution_options(populate_existing=True)
    )
    assert tour is not None
    changes = body.model_dump(exclude_unset=True)
    now = clock.now()
    prop = await _property(session, principal.org_id, tour.property_id)
    if "agent_id" in changes:
        await ensure_user(session, principal.org_id, changes["agent_id"], "body.agent_id")
    if "unit_id" in changes:
        await _ensure_unit(session, principal.org_id, changes["unit_id"])
        tour.unit_id = changes["unit_id"]
    if changes.get("notes") is not None:
        tour.notes = changes["notes"]
    moves = {k: changes[k] for k in ("starts_at", "agent_id", "tour_type") if changes.get(k) is not None}
    # values sent back unchanged (a client PATCHing the whole object) are not a reschedule
    if "starts_at" in moves and read_time(moves["starts_at"], prop, "body.starts_at") == tour.starts_at:
        del moves["starts_at"]
    if moves.get("agent_id") == tour.agent_id:
        moves.pop("agent_id", None)
    if moves.get("tour_type") == tour.tour_type:
        moves.pop("tour_type", None)
    target = TourStatus(changes["status"]) if changes.get("status") is not None else None
    reason = changes.get("reason")
    if target is not None and target != TourStatus(tour.status):
        await set_status(session, principal, lead, tour, prop, target, reason, now)
    if moves:
        await reschedule(
            session,
            principal,
            lead,
            tour,
            prop,
            starts_at=moves.get("starts_at", tour.starts_at),
            agent_id=moves.get("agent_id"),
            tour_type=TourType(moves.get("tour_type", tour.tour_type)),
            reason=reason,
            now=now,
            field="body.starts_at",
        )
    tour.updated_at = now
    await session.flush()
    return tour


async def reschedule(
    session: AsyncSession,
    principal: Principal,
    lead: Lead,
    tour: Tour,
    prop: Property | None,
    *,
    starts_at: datetime,
    agent_id: uuid.UUID | None,
    tour_type: TourType,
    reason: str | None,
    now: datetime,
    field: str,
) -> None:
    """Same tour, new time/agent/type; the old values stay in tour_changes and on the timeline."""
    if TourStatus(tour.status) != TourStatus.scheduled:
        raise Conflict(f"Only a scheduled tour can be rescheduled; this one is {tour.status}.", tour_status=tour.status)
    _refuse_closed(lead, "reschedule a tour")
    new_start = read_time(starts_at, prop, field)
    keep_agent = agent_id or (tour.agent_id if tour_type != TourType.self_guided else None)
    placement = await place(
        session,
        org_id=tour.org_id,
        prop=prop,
        starts_at=new_start,
        tour_type=tour_type,
        agent_id=keep_agent,
        preferred=lead.owner_id,
        now=now,
        field=field,
        agent_field="body.agent_id",
        exclude=tour.id,
    )
    before = (tour.starts_at, tour.agent_id)
    if (new_start, placement.agent_id, tour_type.value) == (*before, tour.tour_type):
        return
    changes = {
        "starts_at": new_start,
        "ends_at": placement.ends_at,
        "busy_until": placement.busy_until,
        "agent_id": placement.agent_id,
        "tour_type": tour_type.value,
        "sequence": tour.sequence + 1,
        "updated_at": now,
    }
    await flush_or_conflict(session, tour, prop, now, field, new=False, changes=changes)
    session.add(
        _change(
            tour,
            "rescheduled",
            principal,
            now,
            from_starts_at=before[0],
            to_starts_at=new_start,
            from_agent_id=before[1],
            to_agent_id=tour.agent_id,
            reason=reason,
        )
    )
    data = {
        **tour_data(tour),
        "from_starts_at": before[0].isoformat(),
        "from_agent_id": str(before[1]) if before[1] else None,
        "reason": reason,
    }
    add_event(
        session,
        lead,
        EventType.tour_rescheduled,
        occurred_at=now,
        actor_type="user",
        actor_id=principal.user_id,
        data=data,
    )
    touch(lead)
    await run_rules(session, lead, EventType.tour_rescheduled, now, data=tour_data(tour))  # the automation's turn


async def set_status(
    session: AsyncSession,
    principal: Principal,
    lead: Lead,
    tour: Tour,
    prop: Property | None,
    target: TourStatus,
    reason: str | None,
    now: datetime,
) -> None:
    previous = TourStatus(tour.status)
    if target not in _MOVES[previous]:
        raise Conflict(
            f"A {previous} tour can't become {target}.",
            errors=[{"field": "body.status", "message": f"allowed from {previous}: {sorted(_MOVES[previous])}"}],
        )
    if target in (TourStatus.completed, TourStatus.no_show) and now < tour.starts_at:
        raise Conflict(
            f"The tour starts at {tour.starts_at.isoformat()}; it can't be {target} before then.",
            errors=[{"field": "body.status", "message": "only after the start time"}],
        )
    changes: dict[str, Any] = {"status": target.value, "sequence": tour.sequence + 1, "updated_at": now}
    if target == TourStatus.scheduled:
        _refuse_closed(lead, "book a tour")
        changes.update(canceled_at=None, cancel_reason=None)
    if target == TourStatus.canceled:
        changes.update(canceled_at=now, cancel_reason=reason)
    if target == TourStatus.scheduled:
        await flush_or_conflict(session, tour, prop, now, "body.status", new=False, changes=changes)
    else:
        for name, value in changes.items():
            setattr(tour, name, value)
    session.add(
        _change(
            tour,
            target.value,
            principal,
            now,
            from_status=previous,
            to_status=target,
            reason=reason,
            from_starts_at=tour.starts_at,
            to_agent_id=tour.agent_id,
        )
    )
    add_event(
        session,
        lead,
        _STATUS_EVENTS[target],
        occurred_at=now,
        actor_type="user",
        actor_id=principal.user_id,
        data={**tour_data(tour), "from": previous.value, "reason": reason},
    )
    touch(lead)
    if target == TourStatus.completed:
        await _advance_to_toured(session, principal, lead, now)
    await run_rules(session, lead, _STATUS_EVENTS[target], now, data=tour_data(tour))  # the automation's turn


async def _advance_to_toured(session: AsyncSession, principal: Principal, lead: Lead, now: datetime) -> None:
    """A completed tour moves the lead to toured only when that is forward (never undoes an application)."""
    current = LeadStatus(lead.status)
    target = LeadStatus.toured
    if current in lead_status.CLOSED:
        return
    if current != LeadStatus.nurture and lead_status.FUNNEL_RANK[current] >= lead_status.FUNNEL_RANK[target]:
        return
    lead_status.check_transition(current, target)
    lead_status.apply_status(lead, target, now)
    lead.status_label_id = None
    touch(lead)
    add_status_event(
        session,
        lead,
        current,
        occurred_at=now,
        actor_type="user",
        actor_id=principal.user_id,
        cause=EventType.tour_completed,
    )
    await run_rules(session, lead, target, now)
