"""The lead status pipeline as data: allowed moves, funnel order, and what a touch may advance.

One table decides every manual move (409 names the allowed targets); touches only ever move a lead forward
along the funnel, never backward, never out of a closed state except a returning renter reopening a lost lead.
"""

from __future__ import annotations

from datetime import datetime

from shared import clock
from shared.enums import EventType, LeadStatus, Temperature
from shared.errors import InvalidTransition, ValidationFailed
from shared.models import Lead

S = LeadStatus

FUNNEL: tuple[LeadStatus, ...] = (
    S.new,
    S.contacted,
    S.qualified,
    S.tour_requested,
    S.tour_booked,
    S.toured,
    S.application_started,
    S.application_submitted,
    S.leased,
)
FUNNEL_RANK: dict[LeadStatus, int] = {status: rank for rank, status in enumerate(FUNNEL)}
CLOSED: frozenset[LeadStatus] = frozenset({S.leased, S.lost})
OPEN: frozenset[LeadStatus] = frozenset(set(LeadStatus) - CLOSED)


def _forward_from(status: LeadStatus) -> set[LeadStatus]:
    rank = FUNNEL_RANK[status]
    return {later for later in FUNNEL if FUNNEL_RANK[later] > rank and later != S.leased}


# Manual moves. Forward along the funnel is always allowed (a walk-in can jump to tour_booked); the few
# backward edges are the ones leasing reality needs (a canceled tour, an application sent back).
ALLOWED_TRANSITIONS: dict[LeadStatus, frozenset[LeadStatus]] = {
    S.new: frozenset(_forward_from(S.new) | {S.nurture, S.lost}),
    S.contacted: frozenset(_forward_from(S.contacted) | {S.nurture, S.lost}),
    S.qualified: frozenset(_forward_from(S.qualified) | {S.nurture, S.lost}),
    S.tour_requested: frozenset(_forward_from(S.tour_requested) | {S.qualified, S.nurture, S.lost}),
    S.tour_booked: frozenset(_forward_from(S.tour_booked) | {S.tour_requested, S.nurture, S.lost}),
    S.toured: frozenset(_forward_from(S.toured) | {S.tour_booked, S.nurture, S.lost}),
    S.application_started: frozenset({S.application_submitted, S.toured, S.nurture, S.lost}),
    S.application_submitted: frozenset({S.leased, S.application_started, S.nurture, S.lost}),
    S.leased: frozenset({S.lost}),  # a lease that fell through before move-in
    S.nurture: frozenset(set(FUNNEL) - {S.new, S.leased} | {S.lost}),
    S.lost: frozenset({S.new, S.contacted, S.qualified, S.tour_requested, S.nurture}),  # reopen
}

# Touches that move a lead forward (never backward) when they arrive.
TOUCH_TARGETS: dict[str, LeadStatus] = {
    EventType.tour_request: S.tour_requested,
    EventType.tour_scheduled: S.tour_booked,
    EventType.application: S.application_started,
    EventType.email_out: S.contacted,
    EventType.sms_out: S.contacted,
    EventType.call_logged: S.contacted,
    EventType.meeting_logged: S.contacted,
}

# Touches that count as the first response to the renter (speed to lead).
RESPONSE_EVENTS: frozenset[str] = frozenset(
    {EventType.email_out, EventType.sms_out, EventType.call_logged, EventType.meeting_logged}
)


def allowed_targets(current: LeadStatus) -> list[str]:
    return sorted(ALLOWED_TRANSITIONS[current], key=lambda status: list(LeadStatus).index(LeadStatus(status)))


def check_transition(current: LeadStatus, target: LeadStatus) -> None:
    if target == current:
        raise InvalidTransition(f"The lead is already {current}.", allowed=allowed_targets(current))
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(
            f"A lead cannot move from {current} to {target}.",
            current=str(current),
            allowed=allowed_targets(current),
        )


def apply_status(lead: Lead, target: LeadStatus, now: datetime, lost_reason: str | None = None) -> LeadStatus:
    """Set the status and everything that follows from it (temperature, closed time). Returns the old one."""
    previous = LeadStatus(lead.status)
    if target == S.lost and not lost_reason:
        raise ValidationFailed(
            "Moving a lead to lost needs a reason.",
            errors=[{"field": "body.lost_reason", "message": "required for lost"}],
        )
    lead.status = target
    if target in FUNNEL_RANK:
        lead.reached_rank = max(lead.reached_rank or 0, FUNNEL_RANK[target])
    if target == S.lost:
        lead.temperature = Temperature.cold
        lead.closed_at = now
        lead.next_action_type = None
        lead.next_action_due_at = None
    elif target == S.leased:
        lead.closed_at = now
        lead.next_action_type = None
        lead.next_action_due_at = None
    else:
        if previous == S.lost:
            lead.temperature = Temperature.hot  # reopening makes it hot again
            lead.lost_reason = None
            lead.lost_reason_text = None
        lead.closed_at = None
    return previous


def advance_for_touch(lead: Lead, event_type: str, occurred_at: datetime | None = None) -> LeadStatus | None:
    """Move forward where a touch makes it obvious; record the first response. Returns the old status if moved."""
    occurred_at = occurred_at or clock.now()
    if event_type in RESPONSE_EVENTS and lead.first_response_at is None:
        lead.first_response_at = occurred_at
        lead.first_response_seconds = max(0, int((occurred_at - lead.created_at).total_seconds()))
    target = TOUCH_TARGETS.get(event_type)
    current = LeadStatus(lead.status)
    if target is None or current in CLOSED:
        return None
    if current == S.nurture:
        if target == S.contacted:
            return None  # an outbound nurture message is not re-engagement
        return apply_status(lead, target, occurred_at)
    if FUNNEL_RANK[target] <= FUNNEL_RANK[current]:
        return None
    return apply_status(lead, target, occurred_at)
