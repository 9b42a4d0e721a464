"""The engine: something happened to a lead → which rules fire → what they do, each decision logged with the
rule, its version, and for a skip the reason. Runs inside the transaction that recorded what happened.

Order of one evaluation: a closed lead is closed out (steps suppressed, rule tasks canceled, no next action);
otherwise the owner is settled, sequences that the event stops are stopped, time anchors are rescheduled,
status rules then event rules fire, the label's action plan fires, and the invariant is enforced last: an
open lead always leaves with a next action, a due time and an owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.automation import actions, log, scheduler
from services.api.automation.conditions import ContactInfo, failed_condition
from services.api.automation.defaults import DEFAULT_SCOPE, DEFAULTS_VERSION
from services.api.automation.effects import RuleStamp
from services.api.automation.rules import BoundRule, RuleBook, label_plan, load_book
from services.api.automation.schemas import EventTrigger, StatusTrigger
from shared.enums import EventType, LeadStatus, LostReason, NextActionType, Role
from shared.models import Contact, Lead, User
from shared.repositories.rows import is_pending

CLOSED = frozenset({LeadStatus.lost, LeadStatus.leased})
ALIASES = {EventType.tour_scheduled.value: EventType.tour_booked.value}

# the moments that stop a renter's pending sequence steps, and the reason each step keeps
RENTER_TOUCHES = frozenset(
    {"inquiry", "question", "tour_request", "call", "missed_call", "sms_in", "email_in", "reply", "application"}
)
STOP_REASONS: dict[str, str] = {
    **{event: "renter_replied" for event in RENTER_TOUCHES},
    "application": "application_started",
    "tour_booked": "tour_booked",
    "opt_out": "opted_out",
    "unqualified": "unqualified",
    "email_out": "human_takeover",
    "sms_out": "human_takeover",
    "call_logged": "human_takeover",
    "meeting_logged": "human_takeover",
    "takeover": "human_takeover",
    "status:application_started": "application_started",
    "status:application_submitted": "application_submitted",
    "status:tour_booked": "tour_booked",
}
# the next action an open lead falls back to when no rule set one (the invariant)
FALLBACK: dict[LeadStatus, tuple[NextActionType, int]] = {
    LeadStatus.new: (NextActionType.reply, 15),
    LeadStatus.contacted: (NextActionType.schedule_tour, 2 * 24 * 60),
    LeadStatus.qualified: (NextActionType.schedule_tour, 24 * 60),
    LeadStatus.tour_requested: (NextActionType.confirm_tour, 15),
    LeadStatus.tour_booked: (NextActionType.tour, 24 * 60),
    LeadStatus.toured: (NextActionType.follow_up, 24 * 60),
    LeadStatus.application_started: (NextActionType.application_reminder, 24 * 60),
    LeadStatus.application_submitted: (NextActionType.review_application, 24 * 60),
    LeadStatus.nurture: (NextActionType.nurture, 14 * 24 * 60),
}
INVARIANT = RuleStamp("invariant", DEFAULTS_VERSION, DEFAULT_SCOPE)


@dataclass
class Ctx:
    session: AsyncSession
    lead: Lead
    now: datetime
    book: RuleBook
    contact: ContactInfo
    data: dict[str, Any] = field(default_factory=dict)
    trigger: str = ""
    agents: list[uuid.UUID] | None = None
    new_lead: bool = False
    depth: int = 0
    fallback_owner: uuid.UUID | None = None
    fallback_loaded: bool = False
    touch_text: str | None = None  # the renter's words that triggered this, when the caller has them at hand
    new_contact: bool = False  # the renter was created by this very touch: no earlier decision of theirs exists

    def record(self, outcome: str, *, rule: Any = None, **fields: Any) -> uuid.UUID:
        """One automation-log entry for this lead, at this evaluation's time and trigger."""
        return log.write(
            self.session, self.lead, trigger=self.trigger, outcome=outcome, now=self.now, rule=rule, **fields
        )

    async def owner(self) -> uuid.UUID | None:
        if self.lead.owner_id is not None:
            return self.lead.owner_id
        if not self.fallback_loaded:  # no agent to own it: a manager or admin holds the next step
            self.fallback_loaded = True
            self.fallback_owner = await txmemo.remember_config(
                self.session,
                self.lead.org_id,
                ("automation.fallback_owner", self.lead.org_id),
                self._load_fallback_owner,
            )
        return self.fallback_owner

    async def _load_fallback_owner(self) -> uuid.UUID | None:
        return await self.session.scalar(
            select(User.id)
            .where(User.org_id == self.lead.org_id, User.is_active.is_(True))
            .order_by((User.role == Role.agent).desc(), (User.role == Role.manager).desc(), User.id)
            .limit(1)
        )


async def load_contact(session: AsyncSession, lead: Lead, sms_consent: str | None = None) -> ContactInfo:
    with session.no_autoflush:
        row = (
            await session.execute(
                select(Contact.primary_email, Contact.primary_phone, Contact.sms_consent, Contact.email_consent).where(
                    Contact.id == lead.contact_id
                )
            )
        ).first()
    if row is None:
        return ContactInfo(None, None, sms_consent or "unknown", "unknown")
    return ContactInfo(row[0], row[1], sms_consent or row[2], row[3])


async def make_ctx(
    session: AsyncSession,
    lead: Lead,
    now: datetime,
    *,
    data: dict[str, Any] | None = None,
    sms_consent: str | None = None,
    agents: list[uuid.UUID] | None = None,
    new_lead: bool = False,
    book: RuleBook | None = None,
    contact: ContactInfo | None = None,
    touch_text: str | None = None,
    new_contact: bool = False,
) -> Ctx:
    """`contact` and `touch_text`, when the caller has them (intake just resolved the renter and read their
    message), save reading them back."""
    if is_pending(lead):  # the log and the steps reference the lead row (no ORM relationship orders them)
        await txmemo.flush_before_references(session)
    with session.no_autoflush:
        book = book or await load_book(session, lead.org_id, lead.property_id)
    if contact is None:
        contact = await load_contact(session, lead, sms_consent)
    return Ctx(
        session,
        lead,
        now,
        book,
        contact,
        dict(data or {}),
        agents=agents,
        new_lead=new_lead,
        touch_text=touch_text,
        new_contact=new_contact,
    )


async def evaluate(
    session: AsyncSession,
    lead: Lead,
    now: datetime,
    *,
    event: str | None = None,
    status: LeadStatus | None = None,
    data: dict[str, Any] | None = None,
    sms_consent: str | None = None,
    agents: list[uuid.UUID] | None = None,
    new_lead: bool = False,
    book: RuleBook | None = None,
    contact: ContactInfo | None = None,
    touch_text: str | None = None,
    new_contact: bool = False,
) -> Ctx:
    """Evaluate an event and/or a status entered. Returns the context (its log entries are in the session)."""
    ctx = await make_ctx(
        session,
        lead,
        now,
        data=data,
        sms_consent=sms_consent,
        agents=agents,
        new_lead=new_lead,
        book=book,
        contact=contact,
        touch_text=touch_text,
        new_contact=new_contact,
    )
    triggers: list[tuple[str, str]] = []
    if status is not None:
        triggers.append(("status", LeadStatus(status).value))
    if event is not None:
        triggers.append(("event", ALIASES.get(str(event), str(event))))
    lost_reason = ctx.data.get("lost_reason")
    if lost_reason == LostReason.not_qualified and status in (LeadStatus.nurture, LeadStatus.lost):
        triggers.append(("event", "unqualified"))
    ctx.trigger = "+".join(name if kind == "event" else f"status:{name}" for kind, name in triggers) or "evaluate"
    await run(ctx, triggers)
    return ctx


async def run(ctx: Ctx, triggers: list[tuple[str, str]]) -> None:
    lead = ctx.lead
    for kind, name in triggers:
        reason = STOP_REASONS.get(name if kind == "event" else f"status:{name}")
        if reason and not ctx.new_lead:
            await scheduler.suppress_sequences(ctx, reason)
    if LeadStatus(lead.status) in CLOSED:
        await close_out(ctx, LeadStatus(lead.status).value)
        return
    from services.api.leads.rules import assign_owner_if_missing  # the owners seam; imported late (cycle)

    await assign_owner_if_missing(ctx.session, lead, ctx.agents)
    await scheduler.reschedule_anchors(ctx, triggers)
    for kind, name in triggers:
        for bound in ctx.book.rules:
            if _matches(bound, kind, name):
                await run_rule(ctx, bound)
        if kind == "status" and ctx.data.get("status_label_id"):
            plan = await label_plan(ctx.session, lead.org_id, uuid.UUID(str(ctx.data["status_label_id"])))
            if plan is not None:
                await run_rule(ctx, plan)
    if LeadStatus(lead.status) in CLOSED:  # a rule may have closed it
        await close_out(ctx, LeadStatus(lead.status).value)
        return
    await ensure_invariant(ctx)


def _matches(bound: BoundRule, kind: str, name: str) -> bool:
    trigger = bound.rule.trigger
    if kind == "event":
        return isinstance(trigger, EventTrigger) and trigger.event == name
    return isinstance(trigger, StatusTrigger) and trigger.status == name


async def run_rule(ctx: Ctx, bound: BoundRule, scheduled_action_id: uuid.UUID | None = None) -> bool:
    """One rule: skipped (disabled, a condition failed) or fired; either way one log entry. Returns fired."""
    rule, stamp = bound.rule, bound.stamp
    ctx.data.pop(actions.COVERED, None)
    skipped = "disabled" if not rule.enabled else await failed_condition(ctx, rule.conditions)
    if skipped is not None:
        ctx.record("skipped", rule=stamp, reason=skipped, scheduled_action_id=scheduled_action_id)
        return False
    log_id = uuid.uuid4()
    results = [await actions.run_action(ctx, stamp, action, log_id) for action in rule.actions]
    ctx.record(
        "fired",
        rule=stamp,
        scheduled_action_id=scheduled_action_id,
        data={"name": rule.name, "actions": results},
        log_id=log_id,
    )
    return True


async def close_out(ctx: Ctx, reason: str) -> None:
    """A closed lead has no next action, no pending steps and no open rule tasks."""
    await scheduler.suppress_all(ctx, reason)
    canceled = await actions.cancel_rule_tasks(ctx, None)
    had = ctx.lead.next_action_type
    actions.clear_next_action(ctx.lead, None)
    ctx.record(
        "fired",
        rule=INVARIANT,
        reason=reason,
        data={"closed": reason, "canceled_tasks": canceled, "cleared_next_action": had},
    )


async def ensure_invariant(ctx: Ctx) -> None:
    lead = ctx.lead
    status = LeadStatus(lead.status)
    if status in CLOSED:
        return
    changed: dict[str, Any] = {}
    if lead.next_action_type is None or lead.next_action_type == NextActionType.none:
        action, minutes = FALLBACK[status]
        lead.next_action_type = action.value
        lead.next_action_due_at = ctx.now + timedelta(minutes=minutes)
        changed["type"] = action.value
    if lead.next_action_due_at is None:
        lead.next_action_due_at = ctx.now
        changed["due_at"] = ctx.now.isoformat()
    if lead.next_action_owner_id is None:
        lead.next_action_owner_id = await ctx.owner()
        changed["owner_id"] = str(lead.next_action_owner_id) if lead.next_action_owner_id else None
    if changed:
        log_id = uuid.uuid4()
        if "type" in changed:
            lead.next_action_source = actions.source_of(ctx, INVARIANT, log_id, "no rule set a next action")
        ctx.record(
            "fired",
            rule=INVARIANT,
            reason="every open lead has a next action, a due time and an owner",
            data=changed,
            log_id=log_id,
        )
