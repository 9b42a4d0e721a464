"""Telling an endpoint's owner that it was disabled.

An entry on the organization's own event stream (`webhook_endpoint.disabled`), and a notification (feed and/or
email, per preferences) to the person who created the endpoint.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.messaging.notify import notify
from services.api.webhooks.catalog import ENDPOINT_DISABLED
from services.api.webhooks.outbox import record_event
from shared import clock
from shared.logging import get_logger
from shared.models import WebhookEndpoint

log = get_logger(__name__)


async def notify_endpoint_disabled(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    record_event(
        session,
        endpoint.org_id,
        ENDPOINT_DISABLED,
        lead_id=None,
        occurred_at=clock.now(),
        data={
            "endpoint": {"id": str(endpoint.id), "url": endpoint.url, "reason": endpoint.disabled_reason},
            "owner_id": str(endpoint.created_by_id) if endpoint.created_by_id else None,
        },
    )
    if endpoint.created_by_id is not None:
        await notify(
            session,
            org_id=endpoint.org_id,
            user_ids=[endpoint.created_by_id],
            kind="webhook_disabled",
            lead_id=None,
            title="A webhook endpoint was disabled",
            body=f"Deliveries to {endpoint.url} kept failing, so the endpoint was disabled. Fix it and re-enable it.",
            data={"endpoint_id": str(endpoint.id), "reason": endpoint.disabled_reason},
        )
    log.warning("webhooks.endpoint_disabled", endpoint_id=str(endpoint.id), org_id=str(endpoint.org_id))
