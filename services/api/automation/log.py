"""The automation log: every rule evaluated for a lead (fired, or skipped and why) and every decision taken."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from shared.models import AutomationLog, Lead

# a dry run collects the entries it would have written (the savepoint that held them is rolled back)
collecting: ContextVar[list[AutomationLog] | None] = ContextVar("automation_log_collecting", default=None)


def write(
    session: AsyncSession,
    lead: Lead,
    *,
    trigger: str,
    outcome: str,
    now: datetime,
    rule: Any = None,
    action: str | None = None,
    reason: str | None = None,
    scheduled_action_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    log_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """`rule` is a RuleRef-like object (id, version, scope) or None for engine-level entries. An intake batch
    keeps the entry as values for its one INSERT per table (`txmemo.append_row`). Returns the entry's id."""
    values: dict[str, Any] = {
        "id": log_id or uuid.uuid4(),
        "org_id": lead.org_id,
        "lead_id": lead.id,
        "contact_id": lead.contact_id,
        "occurred_at": now,
        "trigger": trigger,
        "rule_id": rule.id if rule is not None else None,
        "rule_version": rule.version if rule is not None else None,
        "rule_scope": rule.scope if rule is not None else None,
        "action": action,
        "outcome": outcome,
        "reason": reason[:200] if reason else None,
        "scheduled_action_id": scheduled_action_id,
        "data": data or {},
    }
    collector = collecting.get()
    if collector is None and txmemo.append_row(session, AutomationLog, values):
        return values["id"]  # type: ignore[no-any-return]
    entry = AutomationLog(**values)
    session.add(entry)
    if collector is not None:
        collector.append(entry)
    return entry.id


async def lead_log(session: AsyncSession, lead: Lead, limit: int, before: datetime | None) -> list[AutomationLog]:
    query = select(AutomationLog).where(AutomationLog.lead_id == lead.id, AutomationLog.org_id == lead.org_id)
    if before is not None:
        query = query.where(AutomationLog.occurred_at < before)
    query = query.order_by(AutomationLog.occurred_at.desc(), AutomationLog.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())
