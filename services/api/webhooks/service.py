"""Endpoints (subscriptions), their delivery log and replay, and reading the pull stream."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.pagination import decode_cursor, encode_cursor
from services.api.webhooks.publisher import DELIVER_JOB, DELIVER_JOB_ID
from services.api.webhooks.schemas import WebhookCreate, WebhookUpdate
from services.api.webhooks.signing import new_secret
from shared import clock
from shared.config import Settings
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import StreamEvent, WebhookDelivery, WebhookEndpoint
from shared.queue import enqueue_after_commit


async def create_endpoint(
    session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID | None, body: WebhookCreate
) -> WebhookEndpoint:
    now = clock.now()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        org_id=org_id,
        url=body.url,
        events=body.events,
        description=body.description,
        payload_version=1,
        secret=new_secret(),
        enabled=True,
        created_by_id=user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID, lock: bool = False
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.org_id == org_id)
    endpoint = await session.scalar(query.with_for_update() if lock else query)
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


async def list_endpoints(session: AsyncSession, org_id: uuid.UUID) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id).order_by(WebhookEndpoint.created_at)
    return list((await session.scalars(query.limit(500))).all())


async def update_endpoint(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID, body: WebhookUpdate
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, org_id, endpoint_id, lock=True)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    for key in ("url", "events", "description"):
        if key in changes:
            setattr(endpoint, key, changes[key])
    now = clock.now()
    if changes.get("enabled") is True and not endpoint.enabled:
        endpoint.enabled, endpoint.disabled_at, endpoint.disabled_reason = True, None, None
        endpoint.failing_since = None
        enqueue_after_commit(session, DELIVER_JOB, job_id=DELIVER_JOB_ID)
    elif changes.get("enabled") is False and endpoint.enabled:
        endpoint.enabled, endpoint.disabled_at, endpoint.disabled_reason = False, now, "disabled by a user"
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    endpoint = await get_endpoint(session, org_id, endpoint_id, lock=True)
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, settings: Settings, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    """A new secret signs from now on; the old one also signs (a second `v1,` entry) during the grace period."""
    endpoint = await get_endpoint(session, org_id, endpoint_id, lock=True)
    now = clock.now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(hours=settings.webhook_secret_grace_hours)
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def list_deliveries(
    session: AsyncSession,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[WebhookDelivery], str | None]:
    await get_endpoint(session, org_id, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if cursor:
        (before,) = decode_cursor(cursor)
        query = query.where(WebhookDelivery.seq < int(before))
    rows = list((await session.scalars(query.order_by(WebhookDelivery.seq.desc()).limit(limit + 1))).all())
    next_cursor = encode_cursor([rows[limit - 1].seq]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def replay_delivery(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Send this event again now (same webhook-id, so receivers can tell it is a repeat); the log is kept."""
    await get_endpoint(session, org_id, endpoint_id)
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
        .with_for_update()
    )
    if delivery is None:
        raise NotFound("Delivery not found.")
    if delivery.status == "pending":
        raise Conflict("This delivery is still pending; it will be retried on its own.")
    now = clock.now()
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.first_attempt_at = None  # a replay gets its own retry window
    delivery.locked_until = None
    delivery.updated_at = now
    enqueue_after_commit(session, DELIVER_JOB, job_id=DELIVER_JOB_ID)
    await session.flush()
    return delivery


def parse_after(after: str | None) -> int:
    if after is None or after == "":
        return 0
    if not after.isdigit():
        raise ValidationFailed(
            "The cursor is not valid.", errors=[{"field": "query.after", "message": "a cursor from next_cursor"}]
        )
    return int(after)


async def read_stream(
    session: AsyncSession, org_id: uuid.UUID, after: str | None, types: list[str] | None, limit: int
) -> tuple[list[dict[str, Any]], str]:
    position = parse_after(after)
    query = select(StreamEvent.seq, StreamEvent.payload).where(StreamEvent.org_id == org_id, StreamEvent.seq > position)
    if types:
        query = query.where(StreamEvent.type.in_(types))
    rows = (await session.execute(query.order_by(StreamEvent.seq).limit(limit))).all()
    last = rows[-1].seq if rows else position
    return [row.payload for row in rows], str(last)
