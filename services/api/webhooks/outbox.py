"""Writing to the event stream: one row in the transaction of the change, nothing else.

On the intake hot path, so it must stay cheap: no SELECT, one more row that the ORM batches into a single
INSERT per flush with the others of that transaction. Rows are written whether or not the organization has
webhook endpoints, because the pull stream (`GET /v1/events`) carries the same events; endpoints are only
looked up by the publisher, after commit. The publisher is asked to run with one deduplicated job per
transaction; its cron catches anything that job missed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.webhooks.catalog import FROM_TIMELINE
from shared.models import StreamEvent
from shared.queue import PENDING_JOBS_KEY, enqueue_after_commit

PUBLISH_JOB = "publish_events"
PUBLISH_JOB_ID = "events.publish"
# the publish job waits this long after the first commit that asks for it, and every commit meanwhile joins
# it: at 50 leads/s one publish of ~60 events instead of one per commit (each publish reads the leads'
# snapshots and numbers the rows in its own transaction, in the worker that also drains intake)
PUBLISH_DELAY_S = 0.5


def record_timeline_event(session: AsyncSession, event: Mapping[str, Any]) -> None:
    """Called by `add_event` for every timeline entry (its column values); publishes the mapped ones."""
    public_type = FROM_TIMELINE.get(event["type"])
    if public_type is None:
        return
    record_event(
        session,
        event["org_id"],
        public_type,
        lead_id=event["lead_id"],
        occurred_at=event["occurred_at"],
        data=_facts(event),
        source_event_id=event["id"],
    )


def _facts(event: Mapping[str, Any]) -> dict[str, Any]:
    """The public facts of a timeline entry (its column values)."""
    actor_id = event["actor_id"]
    return {
        "timeline_event_id": str(event["id"]),
        "timeline_type": event["type"],
        "actor": {"type": event["actor_type"], "id": str(actor_id) if actor_id else None},
        "source": event["source"],
        "channel": event["channel"],
        "data": event["data"],
    }


def timeline_stream_rows(session: AsyncSession, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`record_timeline_event` for bulk writers that INSERT timeline rows as Core values (the CSV import):
    the stream rows of the mapped ones, as values for one multi-row INSERT, and the publish job asked for."""
    rows = [
        {
            "id": uuid.uuid4(),
            "org_id": event["org_id"],
            "type": FROM_TIMELINE[event["type"]],
            "lead_id": event["lead_id"],
            "source_event_id": event["id"],
            "occurred_at": event["occurred_at"],
            "data": _facts(event),
        }
        for event in events
        if event["type"] in FROM_TIMELINE
    ]
    if rows:
        _ask_publisher(session)
    return rows


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
    """Any public event (review items, endpoint notices): a row now, a stream position after commit (an intake
    batch writes its rows at its end, `txmemo.append_row`)."""
    row = event_stream_row(session, org_id, type, lead_id=lead_id, occurred_at=occurred_at, data=data)
    row["source_event_id"] = source_event_id
    if not txmemo.append_row(session, StreamEvent, row):
        session.add(StreamEvent(**row))


def event_stream_row(
    session: AsyncSession,
    org_id: uuid.UUID,
    type: str,
    *,
    lead_id: uuid.UUID | None,
    occurred_at: datetime,
    data: dict[str, Any],
) -> dict[str, Any]:
    """A public event's stream row as values (a bulk writer such as the CSV import INSERTs them itself);
    the publisher is asked to run after commit."""
    _ask_publisher(session)
    return {
        "id": uuid.uuid4(),
        "org_id": org_id,
        "type": type,
        "lead_id": lead_id,
        "source_event_id": None,
        "occurred_at": occurred_at,
        "data": data,
    }


def _ask_publisher(session: AsyncSession) -> None:
    pending = session.info.get(PENDING_JOBS_KEY, [])
    if not any(job.job_id == PUBLISH_JOB_ID for job in pending):
        enqueue_after_commit(session, PUBLISH_JOB, job_id=PUBLISH_JOB_ID, defer_s=PUBLISH_DELAY_S)
