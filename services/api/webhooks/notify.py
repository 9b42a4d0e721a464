"""Telling an endpoint's owner that it was disabled.

One function for the integrator to point at the messaging helper's `services/api/messaging/notify.py::
notify(...)` once both land. Until then the notice is an entry on the organization's own event stream
(`webhook_endpoint.disabled`, a feed the owner's tools already read) and a log line.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

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
    log.warning("webhooks.endpoint_disabled", endpoint_id=str(endpoint.id), org_id=str(endpoint.org_id))
