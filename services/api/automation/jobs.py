"""The drain of `scheduled_actions`: an arq cron job, safe with several workers, idempotent per row.

Each due row is taken in its own transaction: the lead first (`FOR UPDATE SKIP LOCKED`: a lead busy in a
request is retried on the next tick), then the row (`FOR UPDATE SKIP LOCKED`, still `pending`), so two workers
never run one step and never deadlock with a request that suppresses steps while holding the lead. After
downtime the backlog is caught up in due order, but a step later than its grace period is skipped, with the
reason, instead of sending something stale.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.automation import actions, review
from services.api.automation.evaluate import CLOSED, Ctx, close_out, ensure_invariant, make_ctx, run_rule
from services.api.automation.scheduler import SEQUENCE_STEP, _stamp_of
from services.api.automation.schemas import Action, TimeAnchor, TimeTrigger
from services.api.leads.events import add_event
from shared import clock
from shared.enums import EventType, LeadStatus
from shared.logging import get_logger
from shared.models import Lead, ScheduledAction, Tour
from shared.queue import job_transaction

log_ = get_logger(__name__)
BATCH = 200
MAX_BATCHES = 25


_ACTIONS = TypeAdapter(list[Action])


async def drain_scheduled_actions(ctx: dict[str, Any]) -> int:
    """Run every step due now. Returns how many rows it settled (done, skipped or suppressed)."""
    now = clock.now()
    settled = 0
    for _ in range(MAX_BATCHES):
        async with ctx["sessionmaker"]() as session:
            due = (
                await session.execute(
                    select(ScheduledAction.id, ScheduledAction.lead_id)
                    .where(ScheduledAction.status == "pending", ScheduledAction.due_at <= now)
                    .order_by(ScheduledAction.due_at, ScheduledAction.id)
                    .limit(BATCH)
                )
            ).all()
        progress = 0
        for action_id, lead_id in due:
            async with job_transaction(ctx) as session:
                progress += await process_one(session, action_id, lead_id, now)
        settled += progress
        if len(due) < BATCH or progress == 0:
            break
    if settled:
        log_.info("automation.drained", settled=settled)
    return settled


async def process_one(session: AsyncSession, action_id: uuid.UUID, lead_id: uuid.UUID, now: datetime) -> int:
    lead = await session.scalar(
        select(Lead)
        .where(Lead.id == lead_id)
        .with_for_update(skip_locked=True, key_share=True)
        .execution_options(populate_existing=True)
    )
    if lead is None:
        return 0
    row = await session.scalar(
        select(ScheduledAction)
        .where(ScheduledAction.id == action_id, ScheduledAction.status == "pending")
        .with_for_update(skip_locked=True)
    )
    if row is None:
        return 0
    ctx = await make_ctx(session, lead, now, data={"event_key": str(row.id)})
    ctx.trigger = f"sequence:{row.sequence}:{row.step}" if row.kind == SEQUENCE_STEP else f"time:{row.rule_id}"
    if row.kind == review.REVIEW_SLA:  # a person owes the renter an answer, paused or closed alike
        status, reason, data = await review.run_sla(ctx, row)
        _settle(ctx, row, status, reason, data)
        return 1
    late = now - row.due_at
    if late > timedelta(seconds=row.grace_seconds):
        _settle(
            ctx,
            row,
            "skipped",
            f"stale: {int(late.total_seconds() // 60)} min late, grace {row.grace_seconds // 60} min",
        )
        return 1
    if LeadStatus(lead.status) in CLOSED:
        _settle(ctx, row, "suppressed", LeadStatus(lead.status).value)
        await close_out(ctx, LeadStatus(lead.status).value)
        return 1
    if row.kind == SEQUENCE_STEP:
        await _run_step(ctx, row)
    else:
        await _run_time_rule(ctx, row)
    if LeadStatus(lead.status) in CLOSED:
        await close_out(ctx, LeadStatus(lead.status).value)
    else:
        await ensure_invariant(ctx)
    return 1


def _settle(
    ctx: Ctx, row: ScheduledAction, status: str, reason: str | None, data: dict[str, Any] | None = None
) -> None:
    row.status = status
    row.reason = reason
    row.processed_at = ctx.now
    row.updated_at = ctx.now
    ctx.record(
        status,
        rule=_stamp_of(row),
        action=row.kind,
        reason=reason,
        scheduled_action_id=row.id,
        data={"sequence": row.sequence, "step": row.step, "due_at": row.due_at.isoformat(), **(data or {})},
    )


async def _run_step(ctx: Ctx, row: ScheduledAction) -> None:
    if ctx.lead.automation_paused_at is not None:
        _settle(ctx, row, "skipped", actions.PAUSED)
        return
    stamp = _stamp_of(row)
    log_id = uuid.uuid4()
    results = [
        await actions.run_action(ctx, stamp, action, log_id)
        for action in _ACTIONS.validate_python(row.payload.get("actions", []))
    ]
    _settle(ctx, row, "done", None, {"actions": results})


async def _anchor_still_holds(ctx: Ctx, row: ScheduledAction) -> str | None:
    lead, payload = ctx.lead, row.payload
    anchor = payload.get("anchor")
    if anchor == TimeAnchor.last_touch:
        current = (lead.last_touch_at or lead.created_at).isoformat()
        return None if current == payload.get("anchor_ref") else "anchor_moved: a newer touch"
    if anchor in (TimeAnchor.status_entered, TimeAnchor.application_started):
        return None if lead.status == payload.get("status") else f"anchor_moved: the lead is now {lead.status}"
    if anchor == TimeAnchor.tour_start:
        tour = await ctx.session.scalar(select(Tour).where(Tour.id == uuid.UUID(payload["tour_id"])))
        if tour is None or tour.status != "scheduled":
            return "anchor_moved: the tour is no longer scheduled"
        if tour.starts_at.isoformat() != payload.get("anchor_at"):
            return "anchor_moved: the tour was rescheduled"
        ctx.data.update(tour_id=str(tour.id), starts_at=tour.starts_at.isoformat())
    return None


async def _run_time_rule(ctx: Ctx, row: ScheduledAction) -> None:
    moved = await _anchor_still_holds(ctx, row)
    if moved is not None:
        _settle(ctx, row, "canceled", moved)
        return
    bound = next((b for b in ctx.book.rules if b.rule.id == row.rule_id), None)
    if bound is None or not isinstance(bound.rule.trigger, TimeTrigger):
        _settle(ctx, row, "skipped", "the rule no longer exists")
        return
    fired = await run_rule(ctx, bound, scheduled_action_id=row.id)
    if fired and bound.rule.trigger.since == TimeAnchor.last_touch:
        add_event(
            ctx.session,
            ctx.lead,
            EventType.reactivated,
            occurred_at=ctx.now,
            data={
                "rule": bound.rule.id,
                "version": bound.stamp.version,
                "days_without_touch": bound.rule.trigger.after_minutes // (24 * 60),
            },
        )
    _settle(ctx, row, "done" if fired else "skipped", None if fired else "conditions did not hold")
