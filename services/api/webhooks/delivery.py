"""Sending deliveries: claim in one transaction, POST with no transaction open, record in another.

In order per (endpoint, lead): a delivery is due only when no earlier one (lower `seq`) for the same
endpoint and lead is still pending, so a receiver that fails holds back that lead's later events until it
succeeds or the 24 h retry window closes. Other leads are not held back. Claims are leases
(`locked_until`): a worker that dies mid-send leaves the row to be retried when the lease runs out.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.webhooks.notify import notify_endpoint_disabled
from services.api.webhooks.signing import signature_header
from shared import crypto
from shared.config import Settings
from shared.logging import get_logger
from shared.models import WebhookDelivery, WebhookEndpoint

log = get_logger(__name__)

# after the n-th failed attempt wait RETRY_DELAYS[n-1] (the Standard Webhooks reference schedule), never
# past the retry window: the last attempt is at its end
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
LEASE = timedelta(seconds=90)
CLAIM_LIMIT = 50
LOG_KEEP = 20

_CLAIM = text(
    """
    SELECT d.id FROM webhook_deliveries AS d
    JOIN webhook_endpoints AS w ON w.id = d.endpoint_id AND w.enabled
    WHERE d.status = 'pending' AND d.next_attempt_at <= :now
      AND (d.locked_until IS NULL OR d.locked_until <= :now)
      AND NOT EXISTS (
        SELECT 1 FROM webhook_deliveries AS e
        WHERE e.endpoint_id = d.endpoint_id AND e.lead_id = d.lead_id AND e.status = 'pending' AND e.seq < d.seq
      )
    ORDER BY d.next_attempt_at, d.seq
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)


@dataclass
class Attempt:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secrets: list[str]
    msg_id: str
    body: bytes
    status_code: int | None = None
    error: str | None = None
    response: str | None = None


async def claim(session: AsyncSession, now: datetime) -> list[Attempt]:
    ids = list(await session.scalars(_CLAIM, {"now": now, "limit": CLAIM_LIMIT}))
    if not ids:
        return []
    rows = await session.execute(
        text(
            """
            UPDATE webhook_deliveries AS d SET locked_until = :lease, attempts = d.attempts + 1,
                   first_attempt_at = COALESCE(d.first_attempt_at, :now), last_attempt_at = :now, updated_at = :now
            FROM webhook_endpoints AS w, stream_events AS e
            WHERE d.id = ANY(CAST(:ids AS uuid[])) AND w.id = d.endpoint_id AND e.id = d.event_id
            RETURNING d.id, d.endpoint_id, d.event_id, w.url, w.secret, w.previous_secret,
                      w.previous_secret_expires_at, e.payload
            """
        ),
        {"ids": ids, "now": now, "lease": now + LEASE},
    )
    attempts = []
    for row in rows:
        in_use = [crypto.decrypt(row.secret)]  # raw SQL reads the stored ciphertext
        if row.previous_secret and row.previous_secret_expires_at and row.previous_secret_expires_at > now:
            in_use.append(crypto.decrypt(row.previous_secret))
        body = json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False).encode()
        attempts.append(Attempt(row.id, row.endpoint_id, row.url, in_use, f"msg_{row.event_id.hex}", body))
    return attempts


async def send(client: httpx.AsyncClient, attempt: Attempt, now: datetime) -> None:
    timestamp = int(now.timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": "guestcard-webhooks/1",
        "webhook-id": attempt.msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(attempt.secrets, attempt.msg_id, timestamp, attempt.body),
    }
    try:
        response = await client.post(attempt.url, content=attempt.body, headers=headers)
        attempt.status_code = response.status_code
        attempt.response = response.text[:500]
    except httpx.HTTPError as error:
        attempt.error = f"{type(error).__name__}: {error}"[:500]


async def record(session: AsyncSession, settings: Settings, attempts: list[Attempt], now: datetime) -> None:
    deliveries = {
        d.id: d
        for d in await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id.in_([a.delivery_id for a in attempts])).with_for_update()
        )
    }
    endpoints = {
        e.id: e
        for e in await session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_({a.endpoint_id for a in attempts}))
            .order_by(WebhookEndpoint.id)
            .with_for_update()
        )
    }
    window = timedelta(hours=settings.webhook_retry_hours)
    for attempt in attempts:
        delivery, endpoint = deliveries[attempt.delivery_id], endpoints.get(attempt.endpoint_id)
        ok = attempt.status_code is not None and 200 <= attempt.status_code < 300
        delivery.locked_until = None
        delivery.last_status_code = attempt.status_code
        delivery.last_error = None if ok else (attempt.error or f"HTTP {attempt.status_code}")
        delivery.updated_at = now
        entry: dict[str, Any] = {"at": now.isoformat(), "status_code": attempt.status_code, "error": attempt.error}
        entry["response"] = attempt.response
        delivery.log = [*delivery.log, entry][-LOG_KEEP:]
        if ok:
            delivery.status = "succeeded"
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            if endpoint is not None:
                endpoint.failing_since = None
                endpoint.last_success_at = now
            continue
        started = delivery.first_attempt_at or now
        deadline = started + window
        if now >= deadline:
            delivery.status = "failed"
            delivery.next_attempt_at = None
        else:
            delay = RETRY_DELAYS[min(delivery.attempts, len(RETRY_DELAYS)) - 1]
            delivery.next_attempt_at = min(now + delay, deadline)
        log.info(
            "webhooks.delivery_failed",
            delivery_id=str(delivery.id),
            endpoint_id=str(delivery.endpoint_id),
            status_code=attempt.status_code,
            attempts=delivery.attempts,
            gave_up=delivery.status == "failed",
        )
        if endpoint is None:
            continue
        endpoint.failing_since = endpoint.failing_since or now
        if endpoint.enabled and now - endpoint.failing_since >= timedelta(hours=settings.webhook_disable_after_hours):
            endpoint.enabled = False
            endpoint.disabled_at = now
            endpoint.disabled_reason = (
                f"every delivery failed since {endpoint.failing_since.isoformat()} (last: {delivery.last_error})"
            )
            await notify_endpoint_disabled(session, endpoint)
    await session.flush()


async def send_all(settings: Settings, attempts: list[Attempt], now: datetime) -> None:
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        await asyncio.gather(*(send(client, attempt, now) for attempt in attempts))
