"""Appending to the timeline. Events are never updated or deleted (a merge undo restores, it does not edit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.webhooks.outbox import record_timeline_event
from shared import clock
from shared.models import Lead, LeadEvent


def add_event(
    session: AsyncSession,
    lead: Lead,
    type: str,
    *,
    occurred_at: datetime | None = None,
    actor_type: str = "system",
    actor_id: uuid.UUID | None = None,
    source: str | None = None,
    channel: str | None = None,
    inbound_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> LeadEvent:
    event = LeadEvent(
        id=uuid.uuid4(),
        org_id=lead.org_id,
        lead_id=lead.id,
        contact_id=lead.contact_id,
        type=type,
        occurred_at=occurred_at or clock.now(),
        actor_type=actor_type,
        actor_id=actor_id,
        source=source,
        channel=channel,
        property_id=lead.property_id,
        inbound_id=inbound_id,
        data=data or {},
    )
    session.add(event)
    record_timeline_event(session, event)  # the event stream's outbox row, in this same transaction
    return event


def add_status_event(
    session: AsyncSession,
    lead: Lead,
    previous: str,
    *,
    occurred_at: datetime | None = None,
    actor_type: str = "system",
    actor_id: uuid.UUID | None = None,
    reason: str | None = None,
    cause: str | None = None,
    source: str | None = None,
    inbound_id: uuid.UUID | None = None,
    **extra: Any,
) -> LeadEvent:
    """A status change on the timeline: {from, to, reason, cause}. Metrics and migrations read this shape."""
    data: dict[str, Any] = {"from": str(previous), "to": str(lead.status), "reason": reason, "cause": cause, **extra}
    return add_event(
        session,
        lead,
        "status_changed",
        occurred_at=occurred_at,
        actor_type=actor_type,
        actor_id=actor_id,
        source=source,
        inbound_id=inbound_id,
        data=data,
    )
