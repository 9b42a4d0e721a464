"""The daily digest of newly available matching units, for renters who opted in (`leads.unit_digest_opt_in`).

Selection: `newly_available_matches(session, lead, since, until)` returns the units that
became available in [since, until) (`units.available_since`) on the lead's property (or portfolio-wide when
the lead opted into `match_portfolio`) and that `matching.score` calls matched, best first.

The sending (one outbox message per renter and local morning) is `digest_job.py`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.units.matching import LeadCriteria, UnitFacts, score
from services.api.units.schemas import MatchReason, UnitMatch, UnitOut
from shared.enums import UnitStatus
from shared.models import FloorPlan, Lead, Property, Unit
from shared.working_hours import zone


async def newly_available_matches(
    session: AsyncSession, lead: Lead, since: datetime, until: datetime
) -> list[UnitMatch]:
    query = (
        select(Unit, FloorPlan, Property.timezone)
        .join(FloorPlan, FloorPlan.id == Unit.floor_plan_id)
        .join(Property, Property.id == Unit.property_id)
        .where(
            Unit.org_id == lead.org_id,
            Unit.status == UnitStatus.available,
            Unit.available_since >= since,
            Unit.available_since < until,
            Property.is_archived.is_(False),
        )
    )
    if not lead.match_portfolio:
        if lead.property_id is None:
            return []
        query = query.where(Unit.property_id == lead.property_id)
    criteria = LeadCriteria(lead.bedrooms, lead.budget_max, lead.move_in_date, lead.pets)
    found = []
    for unit, plan, timezone in (await session.execute(query.limit(500))).all():
        rent = unit.rent if unit.rent is not None else plan.rent_min
        facts = UnitFacts(plan.bedrooms, rent, unit.available_on, plan.pet_policy)
        verdict = score(criteria, facts, until.astimezone(zone(timezone)).date())
        if not verdict.matched:
            continue
        found.append(
            UnitMatch(
                unit=UnitOut.model_validate(unit),
                floor_plan=plan.name,
                bedrooms=plan.bedrooms,
                effective_rent=rent,
                score=verdict.score,
                matched=True,
                reasons=[MatchReason(criterion=r.criterion, ok=r.ok, text=r.text) for r in verdict.reasons],
                summary=verdict.summary,
            )
        )
    found.sort(key=lambda m: (-m.score, m.effective_rent or 0, m.unit.number))
    return found
