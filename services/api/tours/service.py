"""Tours: booking one moves the lead to tour_booked, completing it to toured (forward only)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.leads import pipeline
from services.api.leads.deps import load_lead
from services.api.leads.events import add_event, add_status_event
from services.api.leads.refs import ensure_user
from services.api.leads.service import record_touch, run_rules, touch
from services.api.owners.scope import lead_in_scope
from services.api.patching import apply_patch
from services.api.tours.schemas import TourCreate, TourUpdate
from shared import clock
from shared.enums import EventType, LeadStatus, TourStatus
from shared.errors import NotFound
from shared.models import Lead, Tour

_STATUS_EVENTS = {
    TourStatus.completed: EventType.tour_completed,
    TourStatus.canceled: EventType.tour_canceled,
    TourStatus.no_show: EventType.tour_no_show,
    TourStatus.scheduled: EventType.tour_scheduled,
}


def _tour_data(tour: Tour) -> dict[str, str | None]:
    return {
        "tour_id": str(tour.id),
        "starts_at": tour.starts_at.isoformat(),
        "tour_type": tour.tour_type,
        "agent_id": str(tour.agent_id) if tour.agent_id else None,
    }


async def create_tour(session: AsyncSession, principal: Principal, lead: Lead, body: TourCreate) -> Tour:
    await ensure_user(session, principal.org_id, body.agent_id, "body.agent_id")
    tour = Tour(
        id=uuid.uuid4(),
        org_id=lead.org_id,
        lead_id=lead.id,
        property_id=lead.property_id,
        starts_at=body.starts_at,
        status=TourStatus.scheduled,
        tour_type=body.tour_type,
        agent_id=body.agent_id or lead.owner_id,
        notes=body.notes,
    )
    session.add(tour)
    now = clock.now()
    add_event(
        session,
        lead,
        EventType.tour_scheduled,
        occurred_at=now,
        actor_type="user",
        actor_id=principal.user_id,
        data=_tour_data(tour),
    )
    await record_touch(session, principal, lead, EventType.tour_scheduled, now, data=_tour_data(tour))
    await session.flush()
    return tour


async def lead_tours(session: AsyncSession, lead: Lead) -> list[Tour]:
    query = select(Tour).where(Tour.lead_id == lead.id, Tour.org_id == lead.org_id).order_by(Tour.starts_at.desc())
    return list((await session.scalars(query.limit(1000))).all())


async def update_tour(session: AsyncSession, principal: Principal, tour_id: uuid.UUID, body: TourUpdate) -> Tour:
    tour = await session.scalar(
        select(Tour).where(Tour.id == tour_id, Tour.org_id == principal.org_id).with_for_update()
    )
    if tour is None or not await lead_in_scope(session, principal, tour.lead_id):
        raise NotFound("Tour not found.")
    changes = body.model_dump(exclude_unset=True)
    if "agent_id" in changes:
        await ensure_user(session, principal.org_id, changes["agent_id"], "body.agent_id")
    previous = TourStatus(tour.status)
    previous_start = tour.starts_at
    apply_patch(tour, changes, not_nullable=("status", "starts_at", "tour_type"))
    tour.updated_at = clock.now()
    status = TourStatus(tour.status)
    if status != previous:
        lead = await load_lead(session, principal.org_id, tour.lead_id, lock=True)
        now = clock.now()
        add_event(
            session,
            lead,
            _STATUS_EVENTS[status],
            occurred_at=now,
            actor_type="user",
            actor_id=principal.user_id,
            data={**_tour_data(tour), "from": previous.value},
        )
        if status == TourStatus.completed:
            await _advance_to_toured(session, principal, lead, now)
        await run_rules(session, lead, _STATUS_EVENTS[status], now, data=_tour_data(tour))  # the automation's turn
    elif tour.starts_at != previous_start and status == TourStatus.scheduled:
        lead = await load_lead(session, principal.org_id, tour.lead_id, lock=True)
        await run_rules(session, lead, EventType.tour_rescheduled, clock.now(), data=_tour_data(tour))
    await session.flush()
    return tour


async def _advance_to_toured(session: AsyncSession, principal: Principal, lead: Lead, now: datetime) -> None:
    """A completed tour moves the lead to toured only when that is forward (never undoes an application)."""
    current = LeadStatus(lead.status)
    target = LeadStatus.toured
    if current in pipeline.CLOSED:
        return
    if current != LeadStatus.nurture and pipeline.FUNNEL_RANK[current] >= pipeline.FUNNEL_RANK[target]:
        return
    pipeline.check_transition(current, target)
    pipeline.apply_status(lead, target, now)
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
