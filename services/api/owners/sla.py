"""SLA timers: a new lead must get a human touch within its property's SLA (default 15 minutes when someone
of the team is on shift, 1 hour outside). The timer is a row with a due time; the SLA cron drains it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.leads.status import RESPONSE_EVENTS
from services.api.owners.config import AssignmentConfig, load_config, timezone_for
from services.api.owners.pool import Pool, load_pool
from shared.models import Lead, LeadEvent, SlaTimer


def unanswered(lead: Lead) -> bool:
    return lead.first_human_response_at is None and lead.first_response_at is None


async def ensure_timer(
    session: AsyncSession,
    lead: Lead,
    now: datetime,
    *,
    is_new: bool,
    config: AssignmentConfig | None = None,
    pool: Pool | None = None,
    tz: ZoneInfo | None = None,
) -> None:
    if not unanswered(lead):
        return
    started: set[object] = session.info.setdefault("owners.sla_timers", set())
    if lead.id in started:  # rules run more than once per transaction; the timer is added once
        return
    started.add(lead.id)
    if not is_new:
        found = await session.scalar(select(SlaTimer.id).where(SlaTimer.lead_id == lead.id))
        if found is not None:
            return
    config = config or await load_config(session, lead.org_id, lead.property_id)
    pool = pool or await load_pool(session, lead.org_id, lead.property_id)
    tz = tz or await timezone_for(session, lead.org_id, lead.property_id)
    in_hours = pool.in_working_hours(now, tz)
    minutes = config.sla_minutes if in_hours else config.sla_after_hours_minutes
    session.add(
        SlaTimer(
            org_id=lead.org_id,
            lead_id=lead.id,
            due_at=(lead.created_at or now) + timedelta(minutes=minutes),
            status="pending",
            created_at=now,
            updated_at=now,
        )
    )


async def human_touched(session: AsyncSession, lead: Lead) -> bool:
    """A person answered: messaging's first human response, or a staff response logged on the timeline."""
    if lead.first_human_response_at is not None:
        return True
    touched = await session.scalar(
        select(
            exists().where(
                LeadEvent.lead_id == lead.id,
                LeadEvent.actor_type == "user",
                LeadEvent.type.in_([str(t) for t in RESPONSE_EVENTS]),
            )
        )
    )
    return bool(touched)
