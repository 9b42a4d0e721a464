"""The one entry point that decides a lead's owner, and the moves that change it (reassign, claim).

`ensure_owner` runs for every lead without an owner (intake, manual add, rules). In order:
1. a returning renter goes back to their previous owner at that property while that owner is active;
2. the property's strategy (else the organization default): `fixed`, `renter_choice` (the agent hint),
   `pool`, or `round_robin` (weighted, fair over time, skipping the away and off-shift);
3. with offers enabled the picked agent gets an offer (accept / decline / timeout → next agent), else owns it;
   nobody to pick → the pool.
Every outcome is a timeline event whose `reason` says why in words.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.leads.events import add_event
from services.api.owners import sla
from services.api.owners.config import AssignmentConfig, load_config, timezone_for
from services.api.owners.notify import tell_managers
from services.api.owners.pool import Pool, load_pool, pick_round_robin
from shared.enums import EventType, LeadStatus, TaskStatus
from shared.errors import Conflict
from shared.models import Lead, LeadOffer, Task, User
from shared.repositories.rows import is_pending

Result = Literal["kept", "assigned", "offered", "pooled"]
CLOSED = (LeadStatus.lost, LeadStatus.leased)


@dataclass(frozen=True)
class OwnerOutcome:
    result: Result
    user_id: uuid.UUID | None
    reason: str
    offer_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Decision:
    user_id: uuid.UUID | None  # None: the pool
    name: str | None
    reason: str
    strategy: str


@dataclass
class Context:
    config: AssignmentConfig
    pool: Pool
    tz: ZoneInfo


async def load_context(session: AsyncSession, lead: Lead) -> Context:
    return Context(
        await load_config(session, lead.org_id, lead.property_id),
        await load_pool(session, lead.org_id, lead.property_id),
        await timezone_for(session, lead.org_id, lead.property_id),
    )


async def ensure_owner(
    session: AsyncSession, lead: Lead, *, now: datetime, agent_hint: str | None = None
) -> OwnerOutcome:
    """Give an unowned open lead an owner (or an offer, or the pool). Idempotent: a lead already offered or
    pooled is left alone, so every rule run may call it."""
    if LeadStatus(lead.status) in CLOSED:
        return OwnerOutcome("kept", lead.owner_id, "closed lead")
    decided: dict[uuid.UUID, OwnerOutcome] = session.info.setdefault("owners.decided", {})
    if lead.owner_id is None and lead.id in decided:  # rules run more than once per transaction
        return decided[lead.id]
    outcome = await _ensure_owner(session, lead, now, agent_hint)
    decided[lead.id] = outcome
    return outcome


async def _ensure_owner(session: AsyncSession, lead: Lead, now: datetime, agent_hint: str | None) -> OwnerOutcome:
    with session.no_autoflush:  # a new lead is written once, fully formed, at the request's flush
        is_new = is_pending(lead)
        if lead.owner_id is not None:
            if not is_new and lead.status == LeadStatus.new:
                await sla.ensure_timer(session, lead, now, is_new=False)
            return OwnerOutcome("kept", lead.owner_id, "already owned")
        if not is_new:
            pending = await session.scalar(
                select(LeadOffer).where(LeadOffer.lead_id == lead.id, LeadOffer.status == "pending")
            )
            if pending is not None:
                return OwnerOutcome("offered", pending.user_id, pending.reason or "", pending.id)
            if lead.pooled_at is not None:
                return OwnerOutcome("pooled", None, "waiting in the pool")
        context = await load_context(session, lead)
        if lead.status == LeadStatus.new:
            await sla.ensure_timer(
                session, lead, now, is_new=is_new, config=context.config, pool=context.pool, tz=context.tz
            )
        if not context.pool.candidates and context.config.strategy == "round_robin":
            # no team, no manager, no agent (a fresh organization): nothing to decide, nothing to record
            return OwnerOutcome("pooled", None, "nobody in the organization to assign")
        decision = await decide(session, lead, context, now, agent_hint=agent_hint)
        return await apply_decision(session, lead, context, decision, now)


async def decide(
    session: AsyncSession,
    lead: Lead,
    context: Context,
    now: datetime,
    *,
    agent_hint: str | None = None,
    exclude: set[uuid.UUID] | None = None,
    returning: bool = True,
    strategy: str | None = None,
) -> Decision:
    exclude = exclude or set()
    config = context.config
    if returning and lead.property_id is not None and not txmemo.is_new_renter(session, lead.contact_id):
        previous = await _previous_owner(session, lead, exclude)
        if previous is not None:
            return Decision(previous[0], previous[1], f"returning renter: back to {previous[1]}", "returning_renter")
    strategy = strategy or config.strategy
    notes: list[str] = []
    if strategy == "fixed":
        user = await _active_user(session, lead.org_id, config.fixed_user_id)
        if user is not None and user.id not in exclude:
            return Decision(user.id, user.name, f"fixed: always {user.name}", "fixed")
        notes.append("the fixed agent is not available")
        strategy = _fallback(config)
    if strategy == "renter_choice":
        chosen = await match_agent(session, lead.org_id, agent_hint) if agent_hint else None
        if chosen is not None and chosen.id not in exclude:
            if chosen.away_until is None or chosen.away_until <= now:
                return Decision(chosen.id, chosen.name, f"renter chose {chosen.name}", "renter_choice")
            notes.append(f"renter chose {chosen.name}, away until {chosen.away_until.astimezone(context.tz):%H:%M}")
        elif agent_hint:
            notes.append(f"renter asked for {agent_hint!r}: no such active agent")
        else:
            notes.append("the renter chose no agent")
        strategy = _fallback(config)
    prefix = "; ".join(notes) + ("; then " if notes else "")
    if strategy == "pool":
        return Decision(None, None, prefix + "pool: waiting for an agent to claim it", "pool")
    pick = await pick_round_robin(session, lead.org_id, context.pool, now, context.tz, exclude)
    if pick is None:
        return Decision(None, None, prefix + "nobody left to assign: to the pool", "pool")
    return Decision(pick.user_id, pick.name, prefix + pick.reason, "round_robin")


def _fallback(config: AssignmentConfig) -> str:
    return config.fallback_strategy if config.fallback_strategy in ("round_robin", "pool") else "round_robin"


async def _active_user(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID | None) -> User | None:
    if user_id is None:
        return None
    return await session.scalar(select(User).where(User.id == user_id, User.org_id == org_id, User.is_active.is_(True)))


async def match_agent(session: AsyncSession, org_id: uuid.UUID, hint: str | None) -> User | None:
    """The active user a renter named: by email, else by full name, else by a unique first name."""
    text = (hint or "").strip()
    if not text:
        return None
    active = (User.org_id == org_id) & User.is_active.is_(True)
    if "@" in text:
        return await session.scalar(select(User).where(active, func.lower(User.email) == text.lower()))
    by_name = list(await session.scalars(select(User).where(active, func.lower(User.name) == text.lower())))
    if len(by_name) == 1:
        return by_name[0]
    first = list(await session.scalars(select(User).where(active, func.lower(User.name).like(text.lower() + " %"))))
    return first[0] if len(first) == 1 else None


async def _previous_owner(session: AsyncSession, lead: Lead, exclude: set[uuid.UUID]) -> tuple[uuid.UUID, str] | None:
    row = (
        await session.execute(
            select(User.id, User.name)
            .join(Lead, Lead.owner_id == User.id)
            .where(
                Lead.org_id == lead.org_id,
                Lead.contact_id == lead.contact_id,
                Lead.property_id == lead.property_id,
                Lead.id != lead.id,
                User.is_active.is_(True),
            )
            .order_by(Lead.created_at.desc())
            .limit(1)
        )
    ).first()
    if row is None or row.id in exclude:
        return None
    return row.id, row.name


async def apply_decision(
    session: AsyncSession,
    lead: Lead,
    context: Context,
    decision: Decision,
    now: datetime,
    *,
    attempt: int = 1,
    previous: uuid.UUID | None = None,
    everyone_declined: bool = False,
) -> OwnerOutcome:
    if decision.user_id is None:
        await pool_lead(session, lead, decision.reason, now, tell=everyone_declined, bump=previous is not None)
        return OwnerOutcome("pooled", None, decision.reason)
    if context.config.offers_enabled:
        offer = make_offer(session, lead, decision, now, context.config.offer_timeout_minutes, attempt)
        return OwnerOutcome("offered", decision.user_id, decision.reason, offer.id)
    await set_owner(
        session, lead, decision.user_id, now, reason=decision.reason, strategy=decision.strategy, previous=previous
    )
    return OwnerOutcome("assigned", decision.user_id, decision.reason)


def make_offer(
    session: AsyncSession, lead: Lead, decision: Decision, now: datetime, timeout_minutes: int, attempt: int
) -> LeadOffer:
    assert decision.user_id is not None
    offer = LeadOffer(
        id=uuid.uuid4(),
        org_id=lead.org_id,
        lead_id=lead.id,
        user_id=decision.user_id,
        status="pending",
        reason=decision.reason,
        attempt=attempt,
        offered_at=now,
        expires_at=now + timedelta(minutes=timeout_minutes),
        created_at=now,
        updated_at=now,
    )
    session.add(offer)
    add_event(
        session,
        lead,
        EventType.offer_made,
        occurred_at=now,
        data={
            "offer_id": str(offer.id),
            "user_id": str(decision.user_id),
            "user_name": decision.name,
            "offered_at": now.isoformat(),
            "expires_at": offer.expires_at.isoformat(),
            "timeout_minutes": timeout_minutes,
            "attempt": attempt,
            "strategy": decision.strategy,
            "reason": decision.reason,
        },
    )
    return offer


async def set_owner(
    session: AsyncSession,
    lead: Lead,
    user_id: uuid.UUID,
    now: datetime,
    *,
    reason: str,
    strategy: str,
    previous: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Make `user_id` the owner; the next action and open tasks that followed the old owner follow along."""
    before = lead.owner_id if lead.owner_id is not None else previous
    lead.owner_id = user_id
    lead.pooled_at = None
    if lead.next_action_type is not None and lead.next_action_owner_id in (None, before):
        lead.next_action_owner_id = user_id
    if not is_pending(lead):
        lead.version += 1
        lead.updated_at = now
        await session.execute(
            update(Task)
            .where(Task.lead_id == lead.id, Task.status == TaskStatus.open)
            .where(or_(Task.owner_id.is_(None), Task.owner_id == before) if before else Task.owner_id.is_(None))
            .values(owner_id=user_id, updated_at=now)
        )
    add_event(
        session,
        lead,
        EventType.owner_assigned,
        occurred_at=now,
        actor_type="user" if actor_id else "system",
        actor_id=actor_id,
        data={
            "from": str(before) if before else None,
            "to": str(user_id),
            "owner_id": str(user_id),
            "assigned_at": now.isoformat(),
            "strategy": strategy,
            "reason": reason,
            **(extra or {}),
        },
    )


async def pool_lead(
    session: AsyncSession, lead: Lead, reason: str, now: datetime, *, tell: bool = False, bump: bool = False
) -> None:
    """Unowned on purpose. The ETag moves only when an owner was taken away (pooled_at is not in the lead JSON)."""
    lead.owner_id = None
    lead.pooled_at = now
    if bump and not is_pending(lead):
        lead.version += 1
        lead.updated_at = now
    data: dict[str, Any] = {"reason": reason, "pooled_at": now.isoformat()}
    if tell:
        data["notified"] = [
            str(user_id)
            for user_id in await tell_managers(
                session,
                lead,
                "offer_everyone_declined",
                "Nobody took a lead",
                f"Every agent declined or let the offer time out; the lead is in the pool. {reason}",
                {"lead_id": str(lead.id)},
            )
        ]
    add_event(session, lead, EventType.lead_pooled, occurred_at=now, data=data)


async def cancel_pending_offers(session: AsyncSession, lead: Lead, now: datetime, why: str) -> None:
    await session.execute(
        update(LeadOffer)
        .where(LeadOffer.lead_id == lead.id, LeadOffer.status == "pending")
        .values(status="canceled", answered_at=now, reason=LeadOffer.reason + f" | canceled: {why}", updated_at=now)
    )


async def reassign_lead(
    session: AsyncSession, lead: Lead, now: datetime, *, away_from: uuid.UUID, why: str
) -> OwnerOutcome:
    """Move a lead off `away_from` through its property's strategy (the lead must be locked)."""
    previous = lead.owner_id
    lead.owner_id = None
    await cancel_pending_offers(session, lead, now, why)
    context = await load_context(session, lead)
    decision = await decide(session, lead, context, now, exclude={away_from})
    decision = Decision(decision.user_id, decision.name, f"{why}: {decision.reason}", decision.strategy)
    return await apply_decision(session, lead, context, decision, now, previous=previous)


async def reassign_user_leads(
    session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID, now: datetime, why: str
) -> dict[str, int]:
    """Every open lead of a leaving agent (and its pending offers) goes through the strategy again."""
    counts = {"assigned": 0, "offered": 0, "pooled": 0}
    leads = list(
        await session.scalars(
            select(Lead)
            .where(Lead.org_id == org_id, Lead.status.notin_(CLOSED))
            .where(
                or_(
                    Lead.owner_id == user_id,
                    Lead.id.in_(
                        select(LeadOffer.lead_id).where(LeadOffer.user_id == user_id, LeadOffer.status == "pending")
                    ),
                )
            )
            .order_by(Lead.id)
            .with_for_update(key_share=True)
        )
    )
    for lead in leads:
        if lead.owner_id is not None and lead.owner_id != user_id:
            continue
        outcome = await reassign_lead(session, lead, now, away_from=user_id, why=why)
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
        await session.flush()
    return counts


async def claim_lead(session: AsyncSession, lead: Lead, user_id: uuid.UUID, now: datetime) -> None:
    """First claim wins: the conditional UPDATE serializes racing claims on the row; the rest get 409."""
    claimed = await session.scalar(
        update(Lead)
        .where(Lead.id == lead.id, Lead.owner_id.is_(None))
        .values(owner_id=user_id, pooled_at=None, version=Lead.version + 1, updated_at=now)
        .returning(Lead.id)
    )
    if claimed is None:
        await session.refresh(lead, ["owner_id"])
        if lead.owner_id == user_id:
            return
        raise await taken_conflict(session, lead.owner_id, "This lead is already owned")
    await session.refresh(lead)
    name = await session.scalar(select(User.name).where(User.id == user_id))
    await cancel_pending_offers(session, lead, now, f"claimed by {name}")
    if lead.next_action_type is not None and lead.next_action_owner_id is None:
        lead.next_action_owner_id = user_id
    await session.execute(
        update(Task)
        .where(Task.lead_id == lead.id, Task.status == TaskStatus.open, Task.owner_id.is_(None))
        .values(owner_id=user_id, updated_at=now)
    )
    add_event(
        session,
        lead,
        EventType.lead_claimed,
        occurred_at=now,
        actor_type="user",
        actor_id=user_id,
        data={
            "owner_id": str(user_id),
            "claimed_at": now.isoformat(),
            "assigned_at": now.isoformat(),
            "reason": f"claimed from the pool by {name}",
        },
    )


async def taken_conflict(session: AsyncSession, owner_id: uuid.UUID | None, head: str) -> Conflict:
    if owner_id is None:
        return Conflict(f"{head}.")
    name = await session.scalar(select(User.name).where(User.id == owner_id))
    return Conflict(f"{head}: {name} has it.", owner_id=str(owner_id), owner_name=name)
