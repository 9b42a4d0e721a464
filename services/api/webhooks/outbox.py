"""Writing to the event stream: one row in the transaction of the change, nothing else.

On the intake hot path, so it must stay cheap: no SELECT, one more row that the ORM batches into a single
INSERT per flush with the others of that transaction. Rows are written whether or not the organization has
webhook endpoints, because the pull stream (`GET /v1/events`) carries the same events; endpoints are only
looked up by the publisher, after commit. The publisher is asked to run with one deduplicated job per
transaction; its cron catches anything that job missed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.webhooks.catalog import FROM_TIMELINE
from shared.models import LeadEvent, StreamEvent
from shared.queue import PENDING_JOBS_KEY, enqueue_after_commit

PUBLISH_JOB = "publish_events"
PUBLISH_JOB_ID = "events.publish"


def record_timeline_event(session: AsyncSession, event: LeadEvent) -> None:
    """Called by `add_event` for every timeline entry; publishes the mapped ones."""
    public_type = FROM_TIMELINE.get(event.type)
    if public_type is None:
        return
    facts: dict[str, Any] = {
        "timeline_event_id": str(event.id),
        "timeline_type": event.type,
        "actor": {"type": event.actor_type, "id": str(event.actor_id) if event.actor_id else None},
        "source": event.source,
        "channel": event.channel,
        "data": event.data,
    }
    record_event(
        session,
        event.org_id,
        public_type,
        lead_id=event.lead_id,
        occurred_at=event.occurred_at,
        data=facts,
        source_event_id=event.id,
    )


def record_event(
    session: AsyncSession,
    org_id: uuid.UUID,
    type: str,
    *,
    lead_id: uuid.UUID | None,
    occurred_at: datetime,
    data: dict[str, Any],
    source_event_id: uuid.UUID | None = None,
) -> None:
    """Any public event (review items, endpoint notices): a row now, a stream position after commit."""
    session.add(
        StreamEvent(
            id=uuid.uuid4(),
            org_id=org_id,
            type=type,
            lead_id=lead_id,
            source_event_id=source_event_id,
            occurred_at=occurred_at,
            data=data,
        )
    )
    pending = session.info.get(PENDING_JOBS_KEY, [])
    if not any(job.job_id == PUBLISH_JOB_ID for job in pending):
        enqueue_after_commit(session, PUBLISH_JOB, job_id=PUBLISH_JOB_ID)
