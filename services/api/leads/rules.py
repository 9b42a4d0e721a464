"""Next-action rules: every open lead has a visible next step, an owner, and a due time.

The rule table follows the domain texts: a missed call gets an instant text-back and a call task, a web form
or ILS inquiry gets a fast reply, a tour request is routed to scheduling, an application gets a reminder,
nurture gets a slow cadence, and a closed lead gets nothing (its open rule tasks are canceled).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import ConsentState, EventType, LeadStatus, NextActionType, Role, TaskStatus, TaskType
from shared.models import Lead, Task, User


@dataclass(frozen=True, slots=True)
class Rule:
    action: NextActionType
    due_in: timedelta
    task_type: TaskType | None = None
    task_title: str | None = None


# trigger (an event type or a status) → what should happen next
RULES: dict[str, Rule] = {
    EventType.missed_call: Rule(NextActionType.text_back, timedelta(0), TaskType.call, "Call back: missed call"),
    EventType.inquiry: Rule(NextActionType.reply, timedelta(minutes=5)),
    EventType.question: Rule(NextActionType.reply, timedelta(minutes=5)),
    EventType.reply: Rule(NextActionType.reply, timedelta(minutes=15)),
    EventType.email_in: Rule(NextActionType.reply, timedelta(minutes=15)),
    EventType.sms_in: Rule(NextActionType.reply, timedelta(minutes=5)),
    EventType.call: Rule(NextActionType.schedule_tour, timedelta(hours=4)),
    EventType.tour_request: Rule(
        NextActionType.confirm_tour, timedelta(minutes=15), TaskType.tour, "Confirm the requested tour time"
    ),
    EventType.application: Rule(NextActionType.application_reminder, timedelta(days=1)),
    EventType.email_out: Rule(NextActionType.schedule_tour, timedelta(days=2)),
    EventType.sms_out: Rule(NextActionType.schedule_tour, timedelta(days=2)),
    EventType.call_logged: Rule(NextActionType.schedule_tour, timedelta(days=2)),
    LeadStatus.qualified: Rule(NextActionType.schedule_tour, timedelta(days=1)),
    LeadStatus.tour_requested: Rule(NextActionType.confirm_tour, timedelta(minutes=15)),
    LeadStatus.toured: Rule(NextActionType.application_reminder, timedelta(days=1)),
    LeadStatus.application_started: Rule(NextActionType.application_reminder, timedelta(days=1)),
    LeadStatus.application_submitted: Rule(NextActionType.none, timedelta(0)),
    LeadStatus.nurture: Rule(NextActionType.nurture, timedelta(days=14)),
}

# Once these are reached, an inbound touch must not reset the next action to a generic reply.
_PAST_REPLY = frozenset(
    {
        LeadStatus.tour_requested,
        LeadStatus.tour_booked,
        LeadStatus.toured,
        LeadStatus.application_started,
        LeadStatus.application_submitted,
    }
)
_CLOSED = frozenset({LeadStatus.lost, LeadStatus.leased})


async def apply_rules(
    session: AsyncSession,
    lead: Lead,
    trigger: str,
    now: datetime,
    *,
    sms_consent: str | None = None,
    agents: list[uuid.UUID] | None = None,
    new_lead: bool = False,
) -> Rule | None:
    """Set the lead's next action (and rule task) for what just happened. Returns the rule applied.

    `agents` (active agent ids, ordered) and `new_lead` let the intake hot path skip two lookups.
    """
    status = LeadStatus(lead.status)
    if status in _CLOSED:
        await _cancel_rule_tasks(session, lead, now)
        _set_next_action(lead, None, None, None)
        return None
    await assign_owner_if_missing(session, lead, agents)
    if trigger == EventType.opt_out and lead.next_action_type == NextActionType.text_back:
        _set_next_action(lead, NextActionType.call, lead.next_action_due_at or now, lead.owner_id)
        return None
    rule = RULES.get(trigger)
    if rule is None:
        return None
    if rule.action in (NextActionType.reply, NextActionType.text_back) and status in _PAST_REPLY:
        return None
    action = rule.action
    if action == NextActionType.text_back and sms_consent == ConsentState.opted_out:
        action = NextActionType.call  # suppressed: the renter opted out of texts
    if action == NextActionType.none:
        _set_next_action(lead, None, None, None)
        return rule
    _set_next_action(lead, action, now + rule.due_in, lead.owner_id)
    if rule.task_type is not None and rule.task_title is not None:
        await _ensure_rule_task(session, lead, trigger, rule, now, new_lead)
    return rule


def _set_next_action(
    lead: Lead, action: NextActionType | None, due_at: datetime | None, owner_id: uuid.UUID | None
) -> None:
    lead.next_action_type = action.value if action else None
    lead.next_action_due_at = due_at
    lead.next_action_owner_id = owner_id


async def _ensure_rule_task(
    session: AsyncSession, lead: Lead, trigger: str, rule: Rule, now: datetime, new_lead: bool
) -> None:
    """One open task per rule and lead: a renter calling three times gets one call-back task, not three."""
    if not new_lead:
        existing = await session.scalar(
            select(Task.id).where(Task.lead_id == lead.id, Task.rule == trigger, Task.status == TaskStatus.open)
        )
        if existing is not None:
            return
    session.add(
        Task(
            id=uuid.uuid4(),
            org_id=lead.org_id,
            lead_id=lead.id,
            type=rule.task_type,
            title=rule.task_title,
            status=TaskStatus.open,
            due_at=now + rule.due_in,
            owner_id=lead.owner_id,
            rule=trigger,
        )
    )


async def _cancel_rule_tasks(session: AsyncSession, lead: Lead, now: datetime) -> None:
    await session.execute(
        update(Task)
        .where(Task.lead_id == lead.id, Task.status == TaskStatus.open, Task.rule.is_not(None))
        .values(status=TaskStatus.canceled, updated_at=now)
    )


def active_agents_query(org_id: uuid.UUID) -> Select[Any]:
    return (
        select(User.id)
        .where(User.org_id == org_id, User.is_active.is_(True), User.role == Role.agent)
        .order_by(User.id)
    )


async def assign_owner_if_missing(session: AsyncSession, lead: Lead, agents: list[uuid.UUID] | None = None) -> None:
    """Stable assignment: the same renter always lands with the same active agent (no hot-row counter)."""
    if lead.owner_id is not None:
        return
    if agents is None:
        agents = list(await session.scalars(active_agents_query(lead.org_id)))
    if not agents:
        return
    digest = int(hashlib.sha256(lead.contact_id.bytes).hexdigest()[:8], 16)
    lead.owner_id = agents[digest % len(agents)]
