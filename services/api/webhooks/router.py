from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from services.api.deps import AdminDep, ManagerDep, SessionDep, StateDep
from services.api.webhooks import service
from services.api.webhooks.catalog import PUBLIC_EVENT_TYPES, PublicEventType
from services.api.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    EventPage,
    StreamEventOut,
    WebhookCreate,
    WebhookOut,
    WebhookPage,
    WebhookUpdate,
    WebhookWithSecret,
)

router = APIRouter(prefix="/v1/webhooks", tags=["integrations"])
events_router = APIRouter(prefix="/v1/events", tags=["integrations"])


@router.post("", response_model=WebhookWithSecret, status_code=201)
async def create_webhook(body: WebhookCreate, principal: AdminDep, session: SessionDep) -> WebhookWithSecret:
    """Subscribe an endpoint. Deliveries follow Standard Webhooks (webhook-id, webhook-timestamp,
    webhook-signature `v1,<base64 HMAC-SHA256>`); the `secret` is shown only in this answer."""
    endpoint = await service.create_endpoint(session, principal.org_id, principal.user_id, body)
    return WebhookWithSecret.model_validate(endpoint, from_attributes=True)


@router.get("", response_model=WebhookPage)
async def list_webhooks(principal: AdminDep, session: SessionDep) -> WebhookPage:
    endpoints = await service.list_endpoints(session, principal.org_id)
    return WebhookPage(items=[WebhookOut.model_validate(e) for e in endpoints])


@router.get("/event-types", response_model=list[str])
async def list_event_types(principal: AdminDep) -> list[str]:
    return list(PUBLIC_EVENT_TYPES)


@router.get("/{endpoint_id}", response_model=WebhookOut)
async def get_webhook(endpoint_id: uuid.UUID, principal: AdminDep, session: SessionDep) -> WebhookOut:
    return WebhookOut.model_validate(await service.get_endpoint(session, principal.org_id, endpoint_id))


@router.patch("/{endpoint_id}", response_model=WebhookOut)
async def update_webhook(
    endpoint_id: uuid.UUID, body: WebhookUpdate, principal: AdminDep, session: SessionDep
) -> WebhookOut:
    """Change url, events or description; `enabled: true` re-enables an endpoint disabled for failing."""
    return WebhookOut.model_validate(await service.update_endpoint(session, principal.org_id, endpoint_id, body))


@router.delete("/{endpoint_id}", status_code=204)
async def delete_webhook(endpoint_id: uuid.UUID, principal: AdminDep, session: SessionDep) -> Response:
    await service.delete_endpoint(session, principal.org_id, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookWithSecret)
async def rotate_webhook_secret(
    endpoint_id: uuid.UUID, principal: AdminDep, session: SessionDep, state: StateDep
) -> WebhookWithSecret:
    """A new secret, shown once. The old one keeps signing beside it (two `v1,` signatures) for a grace
    period (`previous_secret_expires_at`) so receivers can switch without dropping events."""
    endpoint = await service.rotate_secret(session, state.settings, principal.org_id, endpoint_id)
    return WebhookWithSecret.model_validate(endpoint, from_attributes=True)


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryPage)
async def list_webhook_deliveries(
    endpoint_id: uuid.UUID,
    principal: AdminDep,
    session: SessionDep,
    status: Literal["pending", "succeeded", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> DeliveryPage:
    """The delivery log, newest event first: attempts, status codes, errors, next retry."""
    rows, next_cursor = await service.list_deliveries(session, principal.org_id, endpoint_id, status, limit, cursor)
    return DeliveryPage(items=[DeliveryOut.model_validate(row) for row in rows], next_cursor=next_cursor)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/replay", response_model=DeliveryOut, status_code=202)
async def replay_webhook_delivery(
    endpoint_id: uuid.UUID, delivery_id: uuid.UUID, principal: AdminDep, session: SessionDep
) -> DeliveryOut:
    """Send a delivered or failed event again, with the same webhook-id."""
    delivery = await service.replay_delivery(session, principal.org_id, endpoint_id, delivery_id)
    return DeliveryOut.model_validate(delivery)


@events_router.get("", response_model=EventPage)
async def list_events(
    principal: ManagerDep,
    session: SessionDep,
    after: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{0,19}$", description="a cursor from next_cursor; omit to start at the beginning"),
    ] = None,
    type: Annotated[list[PublicEventType] | None, Query(description="only these event types")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """The event stream for pollers: the same events, with the same bodies, as the webhooks, in the
    organization's order. The cursor is the last `seq` read: stable and gap-free."""
    types = [str(t) for t in type] if type else None
    payloads, next_cursor = await service.read_stream(session, principal.org_id, after, types, limit)
    return EventPage(items=[StreamEventOut.model_validate(p) for p in payloads], next_cursor=next_cursor)
