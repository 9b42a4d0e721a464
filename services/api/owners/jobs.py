"""Owners' timed work, run by the worker's cron: offer timeouts and SLA escalation.

Both are rows with a due time (`lead_offers.expires_at`, `sla_timers.due_at`) drained with
`FOR UPDATE SKIP LOCKED`: two workers never handle the same row, a restart loses nothing (the rows wait),
and a worker that was down catches up on its first run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.leads.events import add_event
from services.api.owners import offers
from services.api.owners.assignment import CLOSED, reassign_lead
from services.api.owners.config import load_config
from services.api.owners.notify import tell_managers
from services.api.owners.sla import human_touched
from shared import clock
from shared.enums import EventType, LeadStatus
from shared.logging import get_logger
from shared.models import Lead, LeadOffer, SlaTimer, User
from shared.queue import job_transaction

log = get_logger(__name__)
BATCH = 100


async def expire_offers(ctx: dict[str, Any]) -> int:
    """Every pending offer past its time goes to the next agent. One transaction per offer."""
    now = clock.now()
    async with job_transaction(ctx) as session:
        due = (
            await session.execute(
                select(LeadOffer.id, LeadOffer.lead_id)
                .where(LeadOffer.status == "pending", LeadOffer.expires_at <= now)
                .order_by(LeadOffer.expires_at)
                .limit(BATCH)
            )
        ).all()
    done = 0
    for offer_id, lead_id in due:
        async with job_transaction(ctx) as session:
            lead = await session.scalar(
                select(Lead).where(Lead.id == lead_id).with_for_update(skip_locked=True, key_share=True)
            )
            if lead is None:  # another worker (or a person answering) holds it
                continue
            offer = await session.scalar(select(LeadOffer).where(LeadOffer.id == offer_id).with_for_update())
            if offer is None or offer.status != "pending" or offer.expires_at > now:
                continue
            await offers.expire(session, lead, offer, now)
            done += 1
    if done:
        log.info("owners.offers_expired", count=done)
    return done


async def escalate_sla(ctx: dict[str, Any]) -> int:
    """Leads past their SLA without a human touch: `sla_breached` + managers told (+ reassignment if set)."""
    now = clock.now()
    async with job_transaction(ctx) as session:
        timers = list(
            await session.scalars(
                select(SlaTimer)
                .where(SlaTimer.status == "pending", SlaTimer.due_at <= now)
                .order_by(SlaTimer.due_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        breached = 0
        for timer in timers:
            breached += await _escalate(session, timer, now)
    if breached:
        log.info("owners.sla_breached", count=breached)
    return breached


async def _escalate(session: AsyncSession, timer: SlaTimer, now: datetime) -> int:
    lead = await session.scalar(select(Lead).where(Lead.id == timer.lead_id).with_for_update(key_share=True))
    timer.updated_at = now
    if lead is None or LeadStatus(lead.status) in CLOSED or await human_touched(session, lead):
        timer.status = "met"
        return 0
    timer.status = "breached"
    timer.fired_at = now
    config = await load_config(session, lead.org_id, lead.property_id)
    owner_name = await session.scalar(select(User.name).where(User.id == lead.owner_id)) if lead.owner_id else None
    minutes = int((timer.due_at - lead.created_at).total_seconds() // 60)
    reason = f"no human response within {minutes} minutes" + (
        f" ({owner_name} owns it)" if owner_name else " (no owner)"
    )
    notified = await tell_managers(
        session, lead, "sla_breached", "A lead waits past its SLA", reason, {"lead_id": str(lead.id)}
    )
    add_event(
        session,
        lead,
        EventType.sla_breached,
        occurred_at=now,
        data={
            "due_at": timer.due_at.isoformat(),
            "breached_at": now.isoformat(),
            "seconds": int((now - lead.created_at).total_seconds()),
            "owner_id": str(lead.owner_id) if lead.owner_id else None,
            "reason": reason,
            "notified": [str(user_id) for user_id in notified],
        },
    )
    if config.sla_reassign and lead.owner_id is not None:
        await reassign_lead(session, lead, now, away_from=lead.owner_id, why=f"SLA breached by {owner_name}")
    await session.flush()
    return 1
