"""Automation handing a lead to a person: the `human_review` action's review item (automation stays paused
until a person resolves it), and the sensitive-conversation SLA as a timed step that tells the managers once
when nobody answered in time."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.automation import log
from services.api.automation.effects import RuleStamp, notify
from services.api.automation.scheduler import REVIEW_SLA, insert_once
from services.api.review.service import record_review_item_created
from shared.enums import ReviewStatus
from shared.models import Lead, ReviewItem, ScheduledAction
from shared.models.lead import LEAD_LOCK

if TYPE_CHECKING:
    from services.api.automation.evaluate import Ctx

KIND = "automation_review"
PAUSE_REASON = "human_review"
SLA_GRACE = timedelta(days=30)  # a late SLA notice still matters: the renter is still waiting


async def open_review(
    session: AsyncSession, lead: Lead, *, reason: str, rule: RuleStamp, now: datetime
) -> tuple[uuid.UUID, bool]:
    """One open item per lead: a second `human_review` while one is open adds nothing."""
    existing = await session.scalar(
        select(ReviewItem.id).where(
            ReviewItem.lead_id == lead.id, ReviewItem.kind == KIND, ReviewItem.status == ReviewStatus.open
        )
    )
    if existing is not None:
        return existing, False
    item = ReviewItem(
        id=uuid.uuid4(),
        org_id=lead.org_id,
        kind=KIND,
        status=ReviewStatus.open,
        contact_id=lead.contact_id,
        lead_id=lead.id,
        candidate_contact_ids=[],
        reasons=[
            {"reason": reason, "rule": rule.id, "version": rule.version, "scope": rule.scope, "at": now.isoformat()}
        ],
    )
    session.add(item)
    record_review_item_created(session, item)
    return item.id, True


async def resume(session: AsyncSession, item: ReviewItem, now: datetime) -> None:
    """A person resolved the item: the lead's automation resumes, unless another such item is still open."""
    if item.lead_id is None:
        return
    still_open = await session.scalar(
        select(ReviewItem.id).where(
            ReviewItem.lead_id == item.lead_id,
            ReviewItem.kind == KIND,
            ReviewItem.status == ReviewStatus.open,
            ReviewItem.id != item.id,
        )
    )
    lead = await session.get(Lead, item.lead_id, with_for_update=LEAD_LOCK)
    if lead is None or still_open is not None or lead.automation_paused_reason != PAUSE_REASON:
        return
    lead.automation_paused_at = None
    lead.automation_paused_reason = None
    log.write(
        session,
        lead,
        trigger="review_resolved",
        outcome="fired",
        now=now,
        reason="a person resolved the review item: automation resumes",
        data={"review_item_id": str(item.id), "resolved_by_id": str(item.resolved_by_id or "")},
    )


async def schedule_sla(session: AsyncSession, lead: Lead, item: ReviewItem, due_at: datetime, now: datetime) -> None:
    """The review item's SLA as a timed step (time is data): at `due_at`, still open → the managers are told."""
    await insert_once(
        session,
        lead,
        kind=REVIEW_SLA,
        stamp=RuleStamp(f"{item.kind}_sla", 1, "default"),
        payload={"review_item_id": str(item.id)},
        due_at=due_at,
        grace_seconds=int(SLA_GRACE.total_seconds()),
        idempotency_key=f"sla:{item.id}",
        now=now,
    )


async def run_sla(ctx: Ctx, row: ScheduledAction) -> tuple[str, str | None, dict[str, Any]]:
    """The SLA came due: (status, reason, data) for the row. Told once: the row's key is the item's."""
    from services.api.owners.notify import manager_ids

    item = await ctx.session.get(ReviewItem, uuid.UUID(str(row.payload["review_item_id"])))
    if item is None or item.status != ReviewStatus.open:
        return "canceled", "resolved_in_time", {}
    lead = ctx.lead
    user_ids = await manager_ids(ctx.session, lead)
    first = (item.reasons or [{}])[0]
    what = first.get("category") or first.get("reason") or item.kind
    stamp = RuleStamp(row.rule_id, row.rule_version, row.rule_scope)
    await notify(
        ctx.session,
        org_id=lead.org_id,
        user_ids=user_ids,
        kind="sla_breach",
        lead_id=lead.id,
        title=f"Overdue: a {item.kind.replace('_', ' ')} ({what}) is still unanswered",
        body=f"Nobody has resolved this review item since {item.created_at:%Y-%m-%d %H:%M} UTC; the renter is "
        f"waiting for a person.\n\nReview item: {item.id}\nLead: {lead.id}",
        data={"review_item_id": str(item.id), "sla_due_at": row.due_at.isoformat()},
        lead=lead,
        rule=stamp,
        trigger=ctx.trigger,
        key=f"sla_breach:{item.id}",
    )
    notified = [str(user) for user in user_ids]
    return "done", None, {"review_item_id": str(item.id), "notified": notified}
