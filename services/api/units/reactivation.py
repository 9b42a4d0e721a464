"""A unit that becomes available (or is added) brings back the aged leads it matches, once per renter and unit.

Aged = nurture; lost for price or for no availability; or open and untouched for N days
(GUESTCARD_REACTIVATION_AFTER_DAYS). Candidates are the unit's property's leads plus, portfolio-wide, leads
that opted into `match_portfolio`. SQL narrows them by the hard criteria; `matching.score` has the last
word, so the endpoint's "matched" and reactivation agree. The row in `lead_reactivations` (unique per
org, contact and unit, inserted ON CONFLICT DO NOTHING) is what makes "never twice" hold under races.
Each reactivated lead gets a `reactivation` next action due now and a `reactivated` timeline event saying
which unit and why. A sequence can listen to that event once automation exists.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.leads.events import add_event
from services.api.leads.service import touch
from services.api.units.matching import LeadCriteria, UnitFacts, score
from shared.enums import EventType, LeadStatus, LostReason, NextActionType, PetPolicy
from shared.logging import get_logger
from shared.models import FloorPlan, Lead, LeadReactivation, Property, Unit
from shared.working_hours import zone

log = get_logger(__name__)

LOST_REASONS = (LostReason.price, LostReason.no_availability)
_CLOSED_OR_NURTURE = (LeadStatus.lost, LeadStatus.leased, LeadStatus.nurture)


def _aged_reason(lead: Lead, cutoff: datetime) -> str:
    if lead.status == LeadStatus.nurture:
        return "nurture"
    if lead.status == LeadStatus.lost:
        return f"lost_{lead.lost_reason}"
    return "no_touch"


def _reason_words(reason: str, days: int) -> str:
    return {
        "nurture": "in nurture",
        "lost_price": "lost for price",
        "lost_no_availability": "lost for no availability",
    }.get(reason, f"no touch for {days}+ days")


async def reactivate_for_unit(
    session: AsyncSession, unit: Unit, plan: FloorPlan, *, days: int, now: datetime
) -> list[uuid.UUID]:
    """Reactivate the aged leads `unit` matches; returns their ids (each renter at most once per unit)."""
    prop = await session.get_one(Property, unit.property_id)
    today = now.astimezone(zone(prop.timezone)).date()
    rent = unit.rent if unit.rent is not None else plan.rent_min
    ready = max(unit.available_on or today, today)
    cutoff = now - timedelta(days=days)
    aged = or_(
        Lead.status == LeadStatus.nurture,
        and_(Lead.status == LeadStatus.lost, Lead.lost_reason.in_(LOST_REASONS)),
        and_(
            Lead.status.notin_(_CLOSED_OR_NURTURE),
            func.coalesce(Lead.last_touch_at, Lead.created_at) < cutoff,
        ),
    )
    already = exists().where(
        LeadReactivation.org_id == Lead.org_id,
        LeadReactivation.contact_id == Lead.contact_id,
        LeadReactivation.unit_id == unit.id,
    )
    query = select(Lead).where(
        Lead.org_id == unit.org_id,
        or_(Lead.property_id == unit.property_id, Lead.match_portfolio.is_(True)),
        aged,
        ~already,
        or_(Lead.bedrooms.is_(None), Lead.bedrooms == plan.bedrooms),
        or_(Lead.move_in_date.is_(None), func.greatest(Lead.move_in_date, today) >= ready),
    )
    if rent is not None:
        query = query.where(or_(Lead.budget_max.is_(None), Lead.budget_max >= rent))
    if plan.pet_policy == PetPolicy.not_allowed:
        query = query.where(Lead.pets.isnot(True))
    leads = (
        await session.scalars(query.order_by(Lead.created_at, Lead.id).limit(5000).with_for_update(key_share=True))
    ).all()
    facts = UnitFacts(plan.bedrooms, rent, unit.available_on, plan.pet_policy)
    reactivated: list[uuid.UUID] = []
    for lead in leads:
        verdict = score(LeadCriteria(lead.bedrooms, lead.budget_max, lead.move_in_date, lead.pets), facts, today)
        if not verdict.matched:
            continue
        reason = _aged_reason(lead, cutoff)
        inserted = await session.scalar(
            pg_insert(LeadReactivation)
            .values(
                id=uuid.uuid4(),
                org_id=lead.org_id,
                lead_id=lead.id,
                contact_id=lead.contact_id,
                unit_id=unit.id,
                reason=reason,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["org_id", "contact_id", "unit_id"])
            .returning(LeadReactivation.id)
        )
        if inserted is None:
            continue  # this renter was already reactivated for this unit (another lead, or a racing request)
        lead.next_action_type = NextActionType.reactivation
        lead.next_action_due_at = now
        lead.next_action_owner_id = lead.owner_id
        touch(lead)
        rent_words = f", ${rent:,}" if rent is not None else ""
        add_event(
            session,
            lead,
            EventType.reactivated,
            occurred_at=now,
            data={
                "unit_id": str(unit.id),
                "unit_number": unit.number,
                "property_id": str(unit.property_id),
                "floor_plan": plan.name,
                "rent": rent,
                "available_on": unit.available_on.isoformat() if unit.available_on else None,
                "reason": reason,
                "why": (
                    f"Unit {unit.number} ({plan.name}{rent_words}) is available and matches: {verdict.summary}; "
                    f"the lead was {_reason_words(reason, days)}"
                ),
            },
        )
        reactivated.append(lead.id)
    if reactivated:
        log.info("units.reactivated", unit_id=str(unit.id), leads=len(reactivated))
    await session.flush()
    return reactivated
