"""A contact merge and the renter's timed steps: one renter, one cadence.

Called by the merge (services/api/merges/service.py) once the merged contact's leads belong to the survivor.
A lead the merge closed as a duplicate hands its pending sequence steps and tour reminders to the survivor's
open lead for that property; a step the survivor already has is canceled instead of doubled; steps anchored
on the closed lead itself (its last touch, its status) are moot and canceled. Each change is logged on the
lead with the reason. Running it again changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.automation import log
from services.api.automation.effects import RuleStamp
from services.api.automation.scheduler import SEQUENCE_STEP, TIME_RULE
from services.api.automation.schemas import TimeAnchor
from shared.enums import LeadStatus
from shared.models import AutomationLog, Lead, ScheduledAction

CLOSED = (LeadStatus.lost, LeadStatus.leased)
TRIGGER = "merge"


def _same_step(row: ScheduledAction) -> tuple[Any, ...]:
    """What makes two pending rows the same step for one renter."""
    if row.kind == SEQUENCE_STEP:
        return (SEQUENCE_STEP, row.sequence, row.step)
    return (row.kind, row.rule_id, (row.payload or {}).get("tour_id"))


def _movable(row: ScheduledAction) -> bool:
    return row.kind == SEQUENCE_STEP or (
        row.kind == TIME_RULE and (row.payload or {}).get("anchor") == TimeAnchor.tour_start
    )


async def after_merge(
    session: AsyncSession,
    *,
    survivor_id: uuid.UUID,
    merged_lead_ids: list[uuid.UUID],
    folded_lead_ids: list[uuid.UUID],
    merge_id: uuid.UUID,
    now: datetime,
) -> dict[str, int]:
    if merged_lead_ids:  # the renter's decisions follow their leads (the duplicate window reads them per renter)
        await session.execute(
            update(AutomationLog).where(AutomationLog.lead_id.in_(merged_lead_ids)).values(contact_id=survivor_id)
        )
    leads = {
        lead.id: lead
        for lead in await session.scalars(
            select(Lead).where(Lead.contact_id == survivor_id).execution_options(populate_existing=True)
        )
    }
    pending = list(
        await session.scalars(
            select(ScheduledAction)
            .where(
                ScheduledAction.lead_id.in_(list(leads)),
                ScheduledAction.status == "pending",
                ScheduledAction.kind.in_([SEQUENCE_STEP, TIME_RULE]),
            )
            .order_by(ScheduledAction.due_at, ScheduledAction.id)
            .with_for_update()
        )
    )
    counts = {"moved": 0, "canceled": 0}
    folded = set(folded_lead_ids)
    from_merged = {row.id for row in pending if row.lead_id in set(merged_lead_ids)}

    def settle(row: ScheduledAction, reason: str, data: dict[str, Any]) -> None:
        row.status, row.reason, row.processed_at, row.updated_at = "canceled", reason[:200], now, now
        counts["canceled"] += 1
        _log(session, leads[row.lead_id], row, "canceled", reason, now, {"merge_id": str(merge_id), **data})

    for row in [r for r in pending if r.lead_id in folded]:
        closed = leads[row.lead_id]
        target = next(
            (
                lead
                for lead in leads.values()
                if lead.id not in folded and lead.property_id == closed.property_id and lead.status not in CLOSED
            ),
            None,
        )
        if target is None or not _movable(row):
            settle(row, "merged: moot, its lead was closed as a duplicate", {})
            continue
        row.lead_id = target.id
        row.updated_at = now
        counts["moved"] += 1
        data = {"merge_id": str(merge_id), "from_lead_id": str(closed.id), "to_lead_id": str(target.id)}
        _log(session, target, row, "moved", "merged: moved to the surviving lead", now, data)
    # one renter, one cadence: a step both sides had is kept once (the survivor's own, else the earliest); the
    # survivor's own steps are never touched
    kept: dict[tuple[Any, ...], ScheduledAction] = {}
    for row in sorted(
        (r for r in pending if r.status == "pending" and leads[r.lead_id].status not in CLOSED),
        key=lambda r: (r.id in from_merged, r.due_at, str(r.id)),
    ):
        key = _same_step(row) if row.kind == SEQUENCE_STEP else (row.lead_id, *_same_step(row))
        first = kept.setdefault(key, row)
        if first is not row and row.id in from_merged:
            settle(row, f"merged: duplicate of step {first.id}", {"kept_id": str(first.id)})
    await session.flush()
    return counts


def _log(
    session: AsyncSession,
    lead: Lead,
    row: ScheduledAction,
    outcome: str,
    reason: str,
    now: datetime,
    data: dict[str, Any],
) -> None:
    log.write(
        session,
        lead,
        trigger=TRIGGER,
        outcome=outcome,
        now=now,
        rule=RuleStamp(row.rule_id, row.rule_version, row.rule_scope),
        action=row.kind,
        reason=reason,
        scheduled_action_id=row.id,
        data={"sequence": row.sequence, "step": row.step, "due_at": row.due_at.isoformat(), **data},
    )
