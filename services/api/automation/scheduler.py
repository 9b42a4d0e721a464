"""Time as data: sequence steps and time-triggered rules are `scheduled_actions` rows with a due time and an
idempotency key. Nothing here polls the lead table: a row is written when its anchor moves (a touch, a status
entered, a tour booked) and the previous pending row for that rule is canceled with the reason."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.automation.effects import RuleStamp
from services.api.automation.schemas import TimeAnchor, TimeTrigger
from services.api.leads.events import add_event
from shared.enums import EventType
from shared.models import Lead, ScheduledAction
from shared.repositories.rows import insert_statement

if TYPE_CHECKING:
    from services.api.automation.evaluate import Ctx
    from services.api.automation.rules import BoundSequence

SEQUENCE_STEP = "sequence_step"
TIME_RULE = "time_rule"
REVIEW_SLA = "review_sla"  # services/api/automation/review.py

# which triggers move which anchor
TOUCH_TRIGGERS = frozenset(
    {
        "inquiry",
        "question",
        "tour_request",
        "call",
        "missed_call",
        "sms_in",
        "email_in",
        "reply",
        "application",
        "email_out",
        "sms_out",
        "call_logged",
        "meeting_logged",
        "tour_booked",
        "created",
    }
)
TOUR_STOPS = {"tour_canceled": "tour_canceled", "tour_no_show": "tour_no_show", "tour_completed": "tour_completed"}


# built once: building SQL expressions per signal was ~5 % of the applier's CPU in an intake run (py-spy)
_time_rule_step = ScheduledAction.kind == TIME_RULE
_step_tour_id = ScheduledAction.payload["tour_id"].astext
_step_anchor_ref = ScheduledAction.payload["anchor_ref"].astext
_step_anchor_status = ScheduledAction.payload["status"].astext
_status_anchored_step = ScheduledAction.payload["anchor"].astext.in_(
    [TimeAnchor.status_entered, TimeAnchor.application_started]
)


def _stamp_of(row: ScheduledAction) -> RuleStamp:
    return RuleStamp(row.rule_id, row.rule_version, row.rule_scope)


async def _suppress(ctx: Ctx, reason: str, *conditions: Any, status: str = "suppressed") -> list[ScheduledAction]:
    if ctx.new_lead:
        return []
    rows = (
        await ctx.session.scalars(
            update(ScheduledAction)
            .where(ScheduledAction.lead_id == ctx.lead.id, ScheduledAction.status == "pending", *conditions)
            .values(status=status, reason=reason, processed_at=ctx.now, updated_at=ctx.now)
            .returning(ScheduledAction)
            # the returned rows as written: a row of this transaction already in the session shows its new status
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    ).all()
    for row in rows:
        ctx.record(
            status,
            rule=_stamp_of(row),
            action=row.kind,
            reason=reason,
            scheduled_action_id=row.id,
            data={"sequence": row.sequence, "step": row.step, "due_at": row.due_at.isoformat()},
        )
    return list(rows)


async def suppress_sequences(ctx: Ctx, reason: str, sequence: str | None = None) -> int:
    """The renter replied, booked, applied, opted out…: every pending step stops, each keeping the reason."""
    conditions: list[Any] = [ScheduledAction.kind == SEQUENCE_STEP]
    if sequence is not None:
        conditions.append(ScheduledAction.sequence == sequence)
    rows = await _suppress(ctx, reason, *conditions)
    for name in sorted({row.sequence for row in rows if row.sequence}):
        add_event(
            ctx.session,
            ctx.lead,
            EventType.sequence_stopped,
            occurred_at=ctx.now,
            data={"sequence": name, "reason": reason, "steps": sum(1 for r in rows if r.sequence == name)},
        )
    return len(rows)


async def suppress_all(ctx: Ctx, reason: str) -> int:
    """A closed lead's steps end; a review item's SLA does not (a person still owes the renter an answer)."""
    return len(await _suppress(ctx, reason, ScheduledAction.kind != REVIEW_SLA))


async def start_sequence(ctx: Ctx, name: str, bound: BoundSequence, stamp: RuleStamp) -> dict[str, Any]:
    session, lead = ctx.session, ctx.lead
    if not ctx.new_lead:
        running = await session.scalar(
            select(ScheduledAction.id)
            .where(
                ScheduledAction.lead_id == lead.id,
                ScheduledAction.status == "pending",
                ScheduledAction.kind == SEQUENCE_STEP,
                ScheduledAction.sequence == name,
            )
            .limit(1)
        )
        if running is not None:
            return {"outcome": "skipped", "reason": "sequence already running", "sequence": name}
    run_key = ctx.now.isoformat()
    seq_stamp = bound.stamp
    for index, step in enumerate(bound.sequence.steps):
        session.add(
            ScheduledAction(
                id=uuid.uuid4(),
                org_id=lead.org_id,
                lead_id=lead.id,
                kind=SEQUENCE_STEP,
                rule_id=seq_stamp.id[:64],
                rule_version=seq_stamp.version,
                rule_scope=seq_stamp.scope,
                sequence=name,
                step=index + 1,
                # the step as it was when the sequence started: a later edit never shifts a running cadence
                payload={"actions": [a.model_dump(mode="json") for a in step.actions], "started_by": stamp.id},
                due_at=ctx.now + timedelta(minutes=step.after_minutes),
                grace_seconds=step.grace_minutes * 60,
                idempotency_key=f"seq:{lead.id}:{name}:{run_key}:{index + 1}",
                status="pending",
                created_at=ctx.now,
                updated_at=ctx.now,
            )
        )
    add_event(
        ctx.session,
        lead,
        EventType.sequence_started,
        occurred_at=ctx.now,
        data={"sequence": name, "steps": len(bound.sequence.steps), "rule": stamp.id},
    )
    return {"outcome": "done", "sequence": name, "steps": len(bound.sequence.steps)}


def _anchor_moves(ctx: Ctx, triggers: list[tuple[str, str]]) -> list[tuple[TimeAnchor, datetime, str, dict[str, Any]]]:
    moves: list[tuple[TimeAnchor, datetime, str, dict[str, Any]]] = []
    lead = ctx.lead
    names = {name for kind, name in triggers if kind == "event"}
    statuses = {name for kind, name in triggers if kind == "status"}
    if names & TOUCH_TRIGGERS:
        at = lead.last_touch_at or lead.created_at or ctx.now
        moves.append((TimeAnchor.last_touch, at, at.isoformat(), {}))
    for status in statuses:
        moves.append((TimeAnchor.status_entered, ctx.now, f"{status}@{ctx.now.isoformat()}", {"status": status}))
        if status == "application_started":
            moves.append((TimeAnchor.application_started, ctx.now, ctx.now.isoformat(), {"status": status}))
    if names & {"tour_booked", "tour_rescheduled"} and ctx.data.get("tour_id") and ctx.data.get("starts_at"):
        starts = datetime.fromisoformat(str(ctx.data["starts_at"]))
        ref = f"{ctx.data['tour_id']}@{starts.isoformat()}"
        moves.append((TimeAnchor.tour_start, starts, ref, {"tour_id": str(ctx.data["tour_id"])}))
    return moves


async def reschedule_anchors(ctx: Ctx, triggers: list[tuple[str, str]]) -> None:
    names = {name for kind, name in triggers if kind == "event"}
    if not ctx.new_lead:  # a new lead has no pending steps: no UPDATE, and no SQL expressions built for one
        for name in names & ({"tour_rescheduled", *TOUR_STOPS}):
            if ctx.data.get("tour_id"):
                await _suppress(
                    ctx,
                    TOUR_STOPS.get(name, name),
                    _time_rule_step,
                    _step_tour_id == str(ctx.data["tour_id"]),
                    status="canceled",
                )
        for status in {name for kind, name in triggers if kind == "status"}:  # the status left: its steps end now
            await _suppress(
                ctx,
                f"anchor_moved: the lead is now {status}",
                _time_rule_step,
                _status_anchored_step,
                _step_anchor_status != status,
                status="canceled",
            )
    for anchor, at, ref, extra in _anchor_moves(ctx, triggers):
        await schedule_time_rules(ctx, anchor, at, ref, extra)


async def schedule_time_rules(ctx: Ctx, anchor: TimeAnchor, at: datetime, ref: str, extra: dict[str, Any]) -> None:
    lead = ctx.lead
    for bound in ctx.book.rules:
        trigger = bound.rule.trigger
        if not isinstance(trigger, TimeTrigger) or trigger.since != anchor or not bound.rule.enabled:
            continue
        if not ctx.new_lead:
            moved_away: list[Any] = [_time_rule_step, ScheduledAction.rule_id == bound.rule.id]
            if anchor == TimeAnchor.tour_start:  # one tour's reminders never cancel another tour's
                moved_away.append(_step_tour_id == extra["tour_id"])
            moved_away.append(_step_anchor_ref != ref)
            await _suppress(ctx, f"anchor_moved: {anchor.value}", *moved_away, status="canceled")
        due = at + timedelta(minutes=trigger.after_minutes)
        if due < ctx.now:
            continue  # the moment already passed when the anchor was set (a tour booked for in an hour)
        await insert_once(
            ctx.session,
            lead,
            kind=TIME_RULE,
            stamp=bound.stamp,
            payload={"anchor": anchor.value, "anchor_ref": ref, "anchor_at": at.isoformat(), **extra},
            due_at=due,
            grace_seconds=trigger.grace_minutes * 60,
            idempotency_key=f"time:{lead.id}:{bound.rule.id}:{ref}"[:200],
            now=ctx.now,
        )


_INSERT_ACTION = insert_statement(ScheduledAction.__table__, conflict=("org_id", "idempotency_key"))


async def insert_once(
    session: AsyncSession,
    lead: Lead,
    *,
    kind: str,
    stamp: RuleStamp,
    payload: dict[str, Any],
    due_at: datetime,
    grace_seconds: int,
    idempotency_key: str,
    now: datetime,
) -> None:
    """A pending row, once per idempotency key (a second decision of the same step is a no-op)."""
    row = {
        "id": uuid.uuid4(),
        "org_id": lead.org_id,
        "lead_id": lead.id,
        "kind": kind,
        "rule_id": stamp.id,
        "rule_version": stamp.version,
        "rule_scope": stamp.scope,
        "payload": payload,
        "due_at": due_at,
        "grace_seconds": grace_seconds,
        "idempotency_key": idempotency_key,
        "status": "pending",
        "created_at": now,
        "updated_at": now,
    }
    pending = txmemo.pending_keyed(session)
    if pending is not None:  # a batch's single savepoint: written with its flush, one INSERT for the batch
        key = ("scheduled", lead.org_id, idempotency_key)
        if key not in pending:
            pending[key] = ScheduledAction(**row)
            session.add(pending[key])
        return
    await txmemo.flush_before_references(session)  # a Core insert does not autoflush
    await session.execute(_INSERT_ACTION, row)  # prebuilt: shared/repositories/rows.py
