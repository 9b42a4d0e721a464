"""What a fired rule does. Each action returns its decision as a dict for the log: done, or skipped and why.

Messages and notifications go through the one seam, `effects`; a paused lead (a person holds the
conversation) gets no automated outreach: those actions are skipped with `automation_paused`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.automation import effects, scheduler
from services.api.automation.conditions import next_question
from services.api.automation.effects import RuleStamp
from services.api.automation.schemas import (
    CancelTasks,
    CreateTask,
    HumanReview,
    MoveStatus,
    Notify,
    SendTemplate,
    SetNextAction,
    StartSequence,
    StopSequences,
)
from services.api.messaging.outbox import missing_application_link
from services.api.messaging.sensitive import detect
from services.api.messaging.templates import QUESTIONS
from shared.enums import LeadStatus, NextActionType, TaskStatus
from shared.models import AutomationLog, Lead, LeadEvent, Task, Tour

if TYPE_CHECKING:
    from services.api.automation.evaluate import Ctx

OUTREACH = frozenset({"send_template", "start_sequence"})
PAUSED = "automation_paused"
DUPLICATE = "duplicate_touch"
SENSITIVE = "sensitive_conversation"
NO_LINK = "no_application_link"
NO_LINK_DETAIL = "the template needs {{application_link}}: set the property's or the organization's application_url"
HUMAN_REVIEW = "human_review"
COVERED = "_covered_by"  # set while a rule runs when its first reply was covered by an earlier one
RENTER_WORDS = frozenset({"inquiry", "question", "tour_request", "sms_in", "email_in", "reply"})


def source_of(ctx: Ctx, stamp: RuleStamp, log_id: uuid.UUID, note: str | None = None) -> dict[str, Any]:
    return {
        "set_by": "rule",
        "rule": stamp.id,
        "version": stamp.version,
        "scope": stamp.scope,
        "log_id": str(log_id),
        "trigger": ctx.trigger,
        "decided_at": ctx.now.isoformat(),
        **({"note": note} if note else {}),
    }


async def run_action(ctx: Ctx, stamp: RuleStamp, action: Any, log_id: uuid.UUID) -> dict[str, Any]:
    if action.type in OUTREACH and ctx.lead.automation_paused_at is not None:
        if isinstance(action, SendTemplate) and action.kind == "reply":
            await _paused_reply(ctx, stamp, action)
        return {"type": action.type, "outcome": "skipped", "reason": PAUSED}
    handler = _HANDLERS[action.type]
    result: dict[str, Any] = await handler(ctx, stamp, action, log_id)
    return {"type": action.type, **result}


def clear_next_action(lead: Lead, source: dict[str, Any] | None) -> None:
    lead.next_action_type = lead.next_action_due_at = lead.next_action_owner_id = None
    lead.next_action_source = source


async def _set_next_action(ctx: Ctx, stamp: RuleStamp, action: SetNextAction, log_id: uuid.UUID) -> dict[str, Any]:
    lead = ctx.lead
    if action.action == NextActionType.none:
        clear_next_action(lead, source_of(ctx, stamp, log_id))
        return {"outcome": "done", "action": None}
    base = ctx.now
    if action.due_relative_to == "tour_start":
        base = await tour_start(ctx) or ctx.now
    lead.next_action_type = action.action.value
    lead.next_action_due_at = base + timedelta(minutes=action.due_in_minutes)
    lead.next_action_owner_id = await ctx.owner()
    lead.next_action_source = source_of(ctx, stamp, log_id)
    return {
        "outcome": "done",
        "action": action.action.value,
        "due_at": lead.next_action_due_at.isoformat(),
        "owner_id": str(lead.next_action_owner_id) if lead.next_action_owner_id else None,
    }


async def tour_start(ctx: Ctx) -> datetime | None:
    raw = ctx.data.get("starts_at")
    if raw:
        return raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return await ctx.session.scalar(
        select(func.min(Tour.starts_at)).where(
            Tour.lead_id == ctx.lead.id, Tour.status == "scheduled", Tour.starts_at >= ctx.now
        )
    )


async def _duplicate_window(ctx: Ctx) -> datetime:
    return ctx.now - timedelta(minutes=ctx.book.settings.duplicate_window_minutes)


def _new_renter(ctx: Ctx) -> dict[Any, Any] | None:
    """What this batch decided for a renter created by this very touch (their whole history is in it), so the
    "one renter, one conversation" checks need no lock and no read; None: ask the database."""
    return txmemo.slot(ctx.session, ("renter", ctx.lead.contact_id)) if ctx.new_contact else None


async def _lock_renter(session: AsyncSession, contact_id: uuid.UUID) -> None:
    """One renter's touches decide their first reply and call task one at a time, across properties."""
    await txmemo.advisory_lock(session, f"automation-renter:{contact_id}")


async def _create_task(ctx: Ctx, stamp: RuleStamp, action: CreateTask, log_id: uuid.UUID) -> dict[str, Any]:
    lead, session = ctx.lead, ctx.session
    renter = _new_renter(ctx)
    if ctx.book.settings.duplicate_window_minutes > 0 and renter is not None:
        if ("task", action.task_type.value) in renter:
            covered = {"task_id": str(renter[("task", action.task_type.value)])}
            return {"outcome": "suppressed", "reason": DUPLICATE, "covered_by": covered}
    elif ctx.book.settings.duplicate_window_minutes > 0:
        await _lock_renter(session, lead.contact_id)
        covering = await session.scalar(
            select(Task.id)
            .join(Lead, Lead.id == Task.lead_id)
            .where(
                Lead.contact_id == lead.contact_id,
                Task.org_id == lead.org_id,
                Task.type == action.task_type.value,
                Task.status == TaskStatus.open,
                Task.created_at >= await _duplicate_window(ctx),
            )
            .limit(1)
        )
        if covering is not None:
            return {"outcome": "suppressed", "reason": DUPLICATE, "covered_by": {"task_id": str(covering)}}
    if not ctx.new_lead:
        existing = await session.scalar(
            select(Task.id).where(Task.lead_id == lead.id, Task.rule == stamp.id, Task.status == TaskStatus.open)
        )
        if existing is not None:
            return {"outcome": "skipped", "reason": "task_already_open", "task_id": str(existing)}
    due_at = ctx.now + timedelta(minutes=action.due_in_minutes)
    task = Task(
        id=uuid.uuid4(),
        org_id=lead.org_id,
        lead_id=lead.id,
        type=action.task_type.value,
        title=action.title,
        status=TaskStatus.open,
        due_at=due_at,
        owner_id=await ctx.owner(),
        rule=stamp.id,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(task)
    if renter is not None:
        renter.setdefault(("task", task.type), task.id)
    return {"outcome": "done", "task_id": str(task.id), "task_type": task.type, "due_at": due_at.isoformat()}


def best_channel(ctx: Ctx, wanted: str) -> str | None:
    contact = ctx.contact
    if wanted == "sms":
        return "sms" if contact.can_text else None
    if wanted == "email":
        return "email" if contact.can_email else None
    if contact.can_text:
        return "sms"
    return "email" if contact.can_email else None


async def _send_template(ctx: Ctx, stamp: RuleStamp, action: SendTemplate, log_id: uuid.UUID) -> dict[str, Any]:
    lead, session = ctx.lead, ctx.session
    channel = best_channel(ctx, action.channel)
    if channel is None:
        return {"outcome": "skipped", "reason": "no_reachable_channel", "template": action.template}
    key = f"auto:{lead.id}:{stamp.id}:{ctx.data.get('event_key') or ctx.now.isoformat()}"
    decision: dict[str, Any] = {"template": action.template, "channel": channel, "kind": action.kind}
    if action.first_reply:
        hit = await _sensitive_touch(ctx)
        if hit is not None:  # messaging answers with the neutral acknowledgement and hands it to a person
            return {"outcome": "skipped", "reason": SENSITIVE, "category": hit, **decision}
        covered = await _covering_reply(ctx, stamp, decision, key)
        if covered is not None:
            ctx.data[COVERED] = covered
            return {"outcome": "suppressed", "reason": DUPLICATE, **decision, "covered_by": covered}
    if await missing_application_link(session, lead, action.template, channel):
        return {"outcome": "skipped", "reason": NO_LINK, **decision, "detail": NO_LINK_DETAIL}
    extra: dict[str, Any] = {"first_reply": action.first_reply, "log_id": str(log_id)}
    question = next_question(lead)
    if question is not None:
        extra["ask"] = question
    decision_id = await effects.send(
        session,
        lead=lead,
        channel=channel,
        template=action.template,
        kind=action.kind,
        reason=f"rule {stamp.id} v{stamp.version}",
        rule=stamp,
        idempotency_key=key,
        trigger=ctx.trigger,
        data=extra,
        variables={"question": QUESTIONS[question]},
    )
    renter = _new_renter(ctx) if action.first_reply else None
    if renter is not None:
        renter.setdefault("first_reply", (str(decision_id), key, str(lead.id)))
    return {"outcome": "done", **decision, "idempotency_key": key, "decision_id": str(decision_id), **extra}


async def _covering_reply(ctx: Ctx, stamp: RuleStamp, decision: dict[str, Any], key: str) -> dict[str, str] | None:
    """One renter, one conversation: the first reply decided for this renter inside the window (any lead,
    any property) covers this one; the suppression is logged naming it."""
    if ctx.book.settings.duplicate_window_minutes <= 0:
        return None
    renter = _new_renter(ctx)
    if renter is not None:
        covering = renter.get("first_reply")
    else:
        covering = await _covering_reply_row(ctx)
    if covering is None:
        return None
    covered_by = {"log_id": str(covering[0]), "idempotency_key": covering[1], "lead_id": str(covering[2])}
    ctx.record(
        "suppressed",
        rule=stamp,
        action=effects.SEND,
        reason=DUPLICATE,
        data={**decision, "idempotency_key": key, "covered_by": covered_by},
    )
    return covered_by


async def _covering_reply_row(ctx: Ctx) -> Any:
    lead, session = ctx.lead, ctx.session
    await _lock_renter(session, lead.contact_id)
    return (
        await session.execute(
            select(AutomationLog.id, AutomationLog.data["idempotency_key"].astext, AutomationLog.lead_id)
            .where(
                AutomationLog.contact_id == lead.contact_id,
                AutomationLog.org_id == lead.org_id,
                AutomationLog.action == effects.SEND,
                AutomationLog.outcome == "decided",
                AutomationLog.data["first_reply"].astext == "true",
                AutomationLog.occurred_at >= await _duplicate_window(ctx),
            )
            .order_by(AutomationLog.occurred_at)
            .limit(1)
        )
    ).first()


async def _sensitive_touch(ctx: Ctx) -> str | None:
    """The category when the renter's message that triggered this is sensitive (a person answers it)."""
    event_key = ctx.data.get("event_key")
    if not event_key or ctx.trigger.split("+")[-1] not in RENTER_WORDS:
        return None
    if ctx.touch_text is not None:  # intake handed over the words it just recorded
        hit = detect(ctx.touch_text)
        return hit.category if hit is not None else None
    try:
        inbound_id = uuid.UUID(str(event_key))
    except ValueError:
        return None
    rows = await ctx.session.scalars(
        select(LeadEvent.data).where(LeadEvent.lead_id == ctx.lead.id, LeadEvent.inbound_id == inbound_id)
    )
    text = " ".join(str(part) for data in rows for part in (data.get("subject"), data.get("message")) if part)
    hit = detect(text)
    return hit.category if hit is not None else None


async def _paused_reply(ctx: Ctx, stamp: RuleStamp, action: SendTemplate) -> None:
    """A reply a paused lead does not get is still a row in the outbox, suppressed with the pause's reason."""
    channel = best_channel(ctx, action.channel)
    if channel is None:
        return
    await effects.record_unsent(
        ctx.session,
        lead=ctx.lead,
        channel=channel,
        template=action.template,
        kind=action.kind,
        reason=f"rule {stamp.id} v{stamp.version}",
        rule=stamp,
        idempotency_key=f"auto:{ctx.lead.id}:{stamp.id}:{ctx.data.get('event_key') or ctx.now.isoformat()}",
    )


async def _start_sequence(ctx: Ctx, stamp: RuleStamp, action: StartSequence, log_id: uuid.UUID) -> dict[str, Any]:
    if ctx.data.get(COVERED):  # the reply that covered this touch brings its own follow-up
        return {
            "outcome": "suppressed",
            "reason": DUPLICATE,
            "sequence": action.sequence,
            "covered_by": ctx.data[COVERED],
        }
    bound = ctx.book.sequences.get(action.sequence)
    if bound is None:
        return {"outcome": "skipped", "reason": f"unknown sequence {action.sequence}"}
    return await scheduler.start_sequence(ctx, action.sequence, bound, stamp)


async def _stop_sequences(ctx: Ctx, stamp: RuleStamp, action: StopSequences, log_id: uuid.UUID) -> dict[str, Any]:
    stopped = await scheduler.suppress_sequences(ctx, action.reason, action.sequence)
    return {"outcome": "done", "reason": action.reason, "suppressed_steps": stopped}


async def _move_status(ctx: Ctx, stamp: RuleStamp, action: MoveStatus, log_id: uuid.UUID) -> dict[str, Any]:
    from services.api.automation.evaluate import run
    from services.api.leads import status as lead_status
    from services.api.leads.events import add_status_event
    from shared.errors import InvalidTransition

    lead = ctx.lead
    current, target = LeadStatus(lead.status), action.status
    if ctx.depth >= 3:
        return {"outcome": "skipped", "reason": "rule chain too deep"}
    try:
        lead_status.check_transition(current, target)
    except InvalidTransition as error:
        return {"outcome": "skipped", "reason": error.detail}
    lead_status.apply_status(lead, target, ctx.now, lost_reason=action.lost_reason)
    if target == LeadStatus.lost:
        lead.lost_reason = action.lost_reason
    lead.status_label_id = None
    lead.version += 1
    lead.updated_at = ctx.now
    add_status_event(ctx.session, lead, current, occurred_at=ctx.now, cause=f"rule:{stamp.id}")
    ctx.depth += 1
    await run(ctx, [("status", target.value)])
    ctx.depth -= 1
    return {"outcome": "done", "from": current.value, "to": target.value}


async def _notify(ctx: Ctx, stamp: RuleStamp, action: Notify, log_id: uuid.UUID) -> dict[str, Any]:
    owner = await ctx.owner()
    if owner is None:
        return {"outcome": "skipped", "reason": "nobody to notify"}
    await effects.notify(
        ctx.session,
        org_id=ctx.lead.org_id,
        user_ids=[owner],
        kind=f"rule:{stamp.id}",
        lead_id=ctx.lead.id,
        title=action.title,
        body=action.body,
        lead=ctx.lead,
        rule=stamp,
        trigger=ctx.trigger,
        key=f"rule:{stamp.id}:{ctx.lead.id}:{ctx.data.get('event_key') or ctx.now.isoformat()}",
    )
    return {"outcome": "done", "user_ids": [str(owner)]}


async def _human_review(ctx: Ctx, stamp: RuleStamp, action: HumanReview, log_id: uuid.UUID) -> dict[str, Any]:
    """People outrank automation: a review item a person resolves, automation paused until then, the next
    step a person's, now, and they are told."""
    from services.api.automation.review import open_review

    lead = ctx.lead
    item_id, created = await open_review(ctx.session, lead, reason=action.reason, rule=stamp, now=ctx.now)
    if lead.automation_paused_at is None:
        lead.automation_paused_at = ctx.now
        lead.automation_paused_reason = HUMAN_REVIEW
    stopped = await scheduler.suppress_sequences(ctx, HUMAN_REVIEW)
    lead.next_action_type = NextActionType.review.value
    lead.next_action_due_at = ctx.now
    lead.next_action_owner_id = await ctx.owner()
    lead.next_action_source = source_of(ctx, stamp, log_id)
    if created:
        body = f"{action.reason}. Automation is paused for this lead until the review item is resolved."
        await _notify(ctx, stamp, Notify(type="notify", title="A lead needs a person", body=body), log_id)
    return {
        "outcome": "done",
        "reason": action.reason,
        "review_item_id": str(item_id),
        "review_item_created": created,
        "suppressed_steps": stopped,
    }


async def cancel_rule_tasks(ctx: Ctx, rules: list[str] | None) -> int:
    if ctx.new_lead:
        return 0
    query = (
        update(Task)
        .where(Task.lead_id == ctx.lead.id, Task.status == TaskStatus.open, Task.rule.is_not(None))
        .values(status=TaskStatus.canceled, updated_at=ctx.now)
        .returning(Task.id)
    )
    if rules is not None:
        query = query.where(Task.rule.in_(rules))
    return len((await ctx.session.execute(query)).all())


async def _cancel_tasks(ctx: Ctx, stamp: RuleStamp, action: CancelTasks, log_id: uuid.UUID) -> dict[str, Any]:
    return {"outcome": "done", "reason": action.reason, "canceled": await cancel_rule_tasks(ctx, action.rules)}


_HANDLERS: dict[str, Any] = {
    "set_next_action": _set_next_action,
    "create_task": _create_task,
    "send_template": _send_template,
    "start_sequence": _start_sequence,
    "stop_sequences": _stop_sequences,
    "move_status": _move_status,
    "notify": _notify,
    "human_review": _human_review,
    "cancel_tasks": _cancel_tasks,
}
