from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.api.webhooks.catalog import PUBLIC_EVENT_TYPES, PublicEventType


def _check_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an absolute http(s) URL")
    return value.strip()


def _check_events(value: list[Any]) -> list[str]:
    value = [str(getattr(event, "value", event)) for event in value]
    unknown = [event for event in value if event not in PUBLIC_EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {list(PUBLIC_EVENT_TYPES)}")
    if not value:
        raise ValueError("subscribe to at least one event type")
    return list(dict.fromkeys(value))


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, description="where events are POSTed")
    events: list[PublicEventType] = Field(min_length=1, description="event types to receive")
    description: str | None = Field(None, max_length=200)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[Any]) -> list[str]:
        return _check_events(value)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=2000)
    events: list[PublicEventType] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = Field(None, description="true re-enables an endpoint that was disabled for failing")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[Any] | None) -> list[str] | None:
        return None if value is None else _check_events(value)


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    payload_version: int
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    last_success_at: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="whsec_…: shown once; verify signatures with it (Standard Webhooks)")


class WebhookPage(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    seq: int
    event_type: str
    lead_id: uuid.UUID | None
    status: str = Field(description="pending | succeeded | failed (gave up after the retry window)")
    attempts: int
    first_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    log: list[Any] = Field(description="the latest attempts: at, status_code, error, response (first 500 chars)")
    created_at: datetime


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class StreamEventOut(BaseModel):
    """Exactly the body a webhook receives."""

    id: uuid.UUID
    seq: int = Field(description="position in the organization's stream: gap-free, never reused")
    type: str
    version: int
    timestamp: str
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[StreamEventOut]
    next_cursor: str = Field(description="pass as `after` to continue; unchanged when nothing new has arrived")
