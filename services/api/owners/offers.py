"""Offers: the picked agent accepts or declines (API, dashboard or a one-click link); a decline or a timeout
moves the offer to the next agent; when everyone has declined the lead goes to the pool and managers are told.

Locks are always taken lead first, then offer (claims and the timeout cron do the same): no deadlocks.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.leads.events import add_event
from services.api.owners.assignment import (
    CLOSED,
    Decision,
    OwnerOutcome,
    apply_decision,
    decide,
    load_context,
    set_owner,
    taken_conflict,
)
from shared.enums import EventType, LeadStatus, Role
from shared.errors import Conflict, NotFound
from shared.models import Lead, LeadOffer, User
from shared.signing import sign

OFFER_PURPOSE = "offer"


def offer_token(key: str, offer: LeadOffer) -> str:
    # valid a day past the offer: a late click gets the 409 page naming who has the lead, not "bad link"
    payload = {"offer": str(offer.id), "user": str(offer.user_id)}
    return sign(key, OFFER_PURPOSE, payload, offer.expires_at + timedelta(days=1))


async def load_offer_for(
    session: AsyncSession, principal: Principal | None, org_id: uuid.UUID, offer_id: uuid.UUID
) -> tuple[Lead, LeadOffer]:
    """The offer and its lead, both locked (lead first). An agent only reaches its own offers."""
    found = await session.scalar(select(LeadOffer).where(LeadOffer.id == offer_id, LeadOffer.org_id == org_id))
    if found is None:
        raise NotFound("Offer not found.")
    if principal is not None and principal.role == Role.agent and principal.user_id != found.user_id:
        raise NotFound("Offer not found.")
    lead = await session.scalar(
        select(Lead)
        .where(Lead.id == found.lead_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    offer = await session.scalar(
        select(LeadOffer).where(LeadOffer.id == offer_id).with_for_update().execution_options(populate_existing=True)
    )
    if lead is None or offer is None:
        raise NotFound("Offer not found.")
    return lead, offer


async def _not_open(session: AsyncSession, lead: Lead, offer: LeadOffer, now: datetime) -> Conflict:
    """409 that says who has the lead now."""
    if lead.owner_id is not None:
        return await taken_conflict(session, lead.owner_id, "This lead is taken")
    pending = await session.scalar(
        select(LeadOffer).where(LeadOffer.lead_id == lead.id, LeadOffer.status == "pending", LeadOffer.id != offer.id)
    )
    state = offer.status if offer.status != "pending" else "expired"
    if pending is not None:
        name = await session.scalar(select(User.name).where(User.id == pending.user_id))
        return Conflict(
            f"This offer is {state}: the lead is offered to {name} now.",
            offered_to=str(pending.user_id),
            offered_to_name=name,
        )
    if lead.pooled_at is not None:
        return Conflict(f"This offer is {state}: the lead is in the pool; claim it.", pooled=True)
    return Conflict(f"This offer is {state}.")


def _seconds(offer: LeadOffer, now: datetime) -> int:
    return max(0, int((now - offer.offered_at).total_seconds()))


async def accept(session: AsyncSession, lead: Lead, offer: LeadOffer, now: datetime) -> None:
    if offer.status != "pending" or offer.expires_at <= now or lead.owner_id is not None:
        raise await _not_open(session, lead, offer, now)
    if LeadStatus(lead.status) in CLOSED:
        raise Conflict("This lead is closed.")
    offer.status = "accepted"
    offer.answered_at = now
    offer.answer_seconds = _seconds(offer, now)
    offer.updated_at = now
    name = await session.scalar(select(User.name).where(User.id == offer.user_id))
    times = _times(offer, now, "accepted_at")
    add_event(
        session,
        lead,
        EventType.offer_accepted,
        occurred_at=now,
        actor_type="user",
        actor_id=offer.user_id,
        data={**times, "reason": f"{name} accepted the offer"},
    )
    await set_owner(
        session,
        lead,
        offer.user_id,
        now,
        reason=f"{name} accepted the offer",
        strategy="offer",
        actor_id=offer.user_id,
        extra={"offer_id": str(offer.id), "offered_at": times["offered_at"]},
    )


def _times(offer: LeadOffer, now: datetime, key: str) -> dict[str, Any]:
    return {
        "offer_id": str(offer.id),
        "user_id": str(offer.user_id),
        "offered_at": offer.offered_at.isoformat(),
        key: now.isoformat(),
        "seconds": _seconds(offer, now),
        "attempt": offer.attempt,
    }


async def decline(
    session: AsyncSession, lead: Lead, offer: LeadOffer, now: datetime, note: str | None = None
) -> OwnerOutcome | None:
    if offer.status != "pending" or lead.owner_id is not None:
        raise await _not_open(session, lead, offer, now)
    offer.status = "declined"
    offer.answered_at = now
    offer.answer_seconds = _seconds(offer, now)
    offer.updated_at = now
    name = await session.scalar(select(User.name).where(User.id == offer.user_id))
    why = f"{name} declined" + (f" ({note})" if note else "")
    add_event(
        session,
        lead,
        EventType.offer_declined,
        occurred_at=now,
        actor_type="user",
        actor_id=offer.user_id,
        data={**_times(offer, now, "declined_at"), "reason": why},
    )
    return await next_agent(session, lead, offer, now, why)


async def expire(session: AsyncSession, lead: Lead, offer: LeadOffer, now: datetime) -> OwnerOutcome | None:
    """The timeout cron's step for one due offer (both rows locked by the caller)."""
    if offer.status != "pending":
        return None
    if lead.owner_id is not None or LeadStatus(lead.status) in CLOSED:
        offer.status = "canceled"
        offer.answered_at = now
        offer.updated_at = now
        return None
    offer.status = "expired"
    offer.answered_at = now
    offer.updated_at = now
    name = await session.scalar(select(User.name).where(User.id == offer.user_id))
    minutes = int((offer.expires_at - offer.offered_at).total_seconds() // 60)
    why = f"{name} did not answer within {minutes} minutes"
    add_event(
        session,
        lead,
        EventType.offer_expired,
        occurred_at=now,
        data={**_times(offer, now, "expired_at"), "expires_at": offer.expires_at.isoformat(), "reason": why},
    )
    return await next_agent(session, lead, offer, now, why)


async def next_agent(
    session: AsyncSession, lead: Lead, offer: LeadOffer, now: datetime, why: str
) -> OwnerOutcome | None:
    """Offer the lead to the next agent of the strategy who has not had it; nobody left → pool + managers."""
    if LeadStatus(lead.status) in CLOSED:
        return None
    context = await load_context(session, lead)
    already = set(await session.scalars(select(LeadOffer.user_id).where(LeadOffer.lead_id == lead.id)))
    strategy = context.config.strategy if context.config.strategy in ("round_robin", "pool") else "round_robin"
    decision = await decide(session, lead, context, now, exclude=already, returning=False, strategy=strategy)
    if decision.user_id is None:
        reason = f"{why}; everyone on the team declined or let it time out: to the pool"
        return await apply_decision(
            session, lead, context, Decision(None, None, reason, "pool"), now, everyone_declined=True
        )
    decision = Decision(decision.user_id, decision.name, f"{why}; next: {decision.reason}", decision.strategy)
    if not context.config.offers_enabled:  # offers were switched off meanwhile: assign
        assert decision.user_id is not None
        await set_owner(session, lead, decision.user_id, now, reason=decision.reason, strategy=decision.strategy)
        return OwnerOutcome("assigned", decision.user_id, decision.reason)
    return await apply_decision(session, lead, context, decision, now, attempt=offer.attempt + 1)
