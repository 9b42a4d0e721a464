"""GET /v1/leads/{id}/matching-units: the property's leasable units ranked for the lead, each with reasons."""

from __future__ import annotations

from sqlalchemy import false, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.units.matching import LeadCriteria, UnitFacts, score
from services.api.units.schemas import Criteria, MatchingUnits, MatchReason, UnitMatch, UnitOut
from shared import clock
from shared.enums import UnitStatus
from shared.models import FloorPlan, Lead, Property, Unit
from shared.working_hours import zone

LEASABLE = (UnitStatus.available, UnitStatus.on_notice)


async def matching_units(session: AsyncSession, lead: Lead, *, portfolio: bool | None, limit: int) -> MatchingUnits:
    """Units that are available or on notice; portfolio-wide when asked (or the lead opted in)."""
    wide = lead.match_portfolio if portfolio is None else portfolio
    query = (
        select(Unit, FloorPlan, Property.timezone)
        .join(FloorPlan, FloorPlan.id == Unit.floor_plan_id)
        .join(Property, Property.id == Unit.property_id)
        .where(Unit.org_id == lead.org_id, Unit.status.in_(LEASABLE), Property.is_archived.is_(False))
    )
    if not wide:
        same = false() if lead.property_id is None else Unit.property_id == lead.property_id
        query = query.where(same)
    criteria = LeadCriteria(lead.bedrooms, lead.budget_max, lead.move_in_date, lead.pets)
    now = clock.now()
    items = []
    for unit, plan, timezone in (await session.execute(query.limit(5000))).all():
        rent = unit.rent if unit.rent is not None else plan.rent_min
        verdict = score(
            criteria,
            UnitFacts(plan.bedrooms, rent, unit.available_on, plan.pet_policy),
            now.astimezone(zone(timezone)).date(),
        )
        items.append(
            UnitMatch(
                unit=UnitOut.model_validate(unit),
                floor_plan=plan.name,
                bedrooms=plan.bedrooms,
                effective_rent=rent,
                score=verdict.score,
                matched=verdict.matched,
                reasons=[MatchReason(criterion=r.criterion, ok=r.ok, text=r.text) for r in verdict.reasons],
                summary=verdict.summary,
            )
        )
    # best score first; then cheaper, then sooner, then by number (a stable, explainable order)
    items.sort(
        key=lambda m: (
            -m.score,
            m.effective_rent if m.effective_rent is not None else 10**9,
            m.unit.available_on.toordinal() if m.unit.available_on else 0,
            m.unit.number,
        )
    )
    return MatchingUnits(
        lead_id=lead.id,
        scope="portfolio" if wide else "property",
        criteria=Criteria(
            bedrooms=lead.bedrooms,
            budget_max=lead.budget_max,
            move_in_date=lead.move_in_date,
            pets=lead.pets,
            match_portfolio=lead.match_portfolio,
            unit_digest_opt_in=lead.unit_digest_opt_in,
        ),
        items=items[:limit],
    )
