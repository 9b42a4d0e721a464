"""Wire shapes of messaging: messages, providers, templates, consent, notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.api.types import IsoDateTime

ChannelName = Literal["sms", "email"]


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    lead_id: uuid.UUID | None
    channel: str = Field(description="sms | email")
    direction: str = Field(description="outbound")
    kind: str = Field(description="reply | proactive | human | notification")
    status: str = Field(description="queued | sending | sent | delivered | failed | suppressed")
    reason: str | None = Field(description="why it was sent, suppressed (e.g. opted_out) or failed")
    template: str | None
    rule: dict[str, Any] | None
    warning: str | None = Field(description="quiet_hours when a person sent during quiet hours")
    subject: str | None
    body: str
    provider: str | None
    provider_message_id: str | None
    error_code: str | None
    attempts: int
    created_by_id: uuid.UUID | None
    not_before: datetime | None
    created_at: datetime
    queued_at: datetime | None
    sending_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    suppressed_at: datetime | None


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: ChannelName | None = Field(None, description="default: the best channel the renter can receive")
    template: str | None = Field(None, max_length=64, description="a template key (e.g. acknowledgement)")
    body: str | None = Field(None, max_length=5000, description="free text ({{variables}} allowed)")
    subject: str | None = Field(None, max_length=300)
    variables: dict[str, str] = Field(default_factory=dict)


class TwilioConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Literal["twilio"]
    account_sid: str = Field(min_length=2, max_length=64)
    auth_token: str = Field(min_length=1, max_length=200, description="stored, never returned")
    from_number: str | None = Field(None, max_length=32, description="E.164 sender")
    messaging_service_sid: str | None = Field(None, max_length=64)


class SmtpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Literal["smtp"]
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(587, ge=1, le=65535)
    username: str | None = Field(None, max_length=320)
    password: str | None = Field(None, max_length=500, description="stored, never returned")
    starttls: StrictBool = False
    tls: StrictBool = False
    from_email: str = Field(min_length=3, max_length=320)
    from_name: str | None = Field(None, max_length=200)


class RecordConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Literal["record"]


class ProviderOut(BaseModel):
    channel: ChannelName
    provider: str
    config: dict[str, Any] = Field(description="the non-secret settings; secrets are never returned")
    secrets_set: list[str]
    updated_at: datetime


class MessagingSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    help_text: str | None = Field(None, max_length=320, description="the answer to HELP")
    inbound_email: str | None = Field(None, max_length=320, description="Reply-To of outbound email")
    quiet_hours: dict[str, Any] | None = Field(
        None, description="when proactive SMS may go out (WorkingHours document); default 09:00–20:00 daily"
    )
    sensitive_sla_minutes: int = Field(60, ge=1, le=10080)
    application_url: str | None = Field(
        None,
        max_length=2000,
        pattern=r"^https?://\S+$",
        description="the default {{application_link}} (a property's own application_url wins)",
    )


class MessagingSettingsOut(MessagingSettingsIn):
    model_config = ConfigDict(from_attributes=True)


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    channel: ChannelName
    property_id: uuid.UUID | None = None
    subject: str | None = Field(None, max_length=300)
    body: str = Field(min_length=1, max_length=5000)


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str | None = Field(None, max_length=300)
    body: str | None = Field(None, min_length=1, max_length=5000)


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    key: str
    channel: str
    property_id: uuid.UUID | None
    subject: str | None
    body: str
    created_at: datetime
    updated_at: datetime


class TemplateList(BaseModel):
    items: list[TemplateOut]
    variables: list[str]


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lead_id: uuid.UUID | None = Field(None, description="fill the variables from this lead")
    variables: dict[str, str] = Field(default_factory=dict, description="values that override the lead's")


class PreviewOut(BaseModel):
    channel: str
    subject: str | None
    body: str
    variables: list[str]
    encoding: str | None = Field(description="sms: gsm7 | ucs2")
    length: int | None = Field(description="sms: septets (gsm7) or UTF-16 units (ucs2)")
    segments: int | None


class ConsentEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    channel: str
    state: str
    source: str
    detail: str | None
    address_kind: str | None = None
    actor_id: uuid.UUID | None
    inbound_id: uuid.UUID | None
    recorded_at: datetime


class ConsentOut(BaseModel):
    contact_id: uuid.UUID
    sms: str = Field(description="latest state: unknown | opted_in | opted_out")
    email: str
    history: list[ConsentEntry]


class ConsentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: ChannelName
    state: Literal["opted_in", "opted_out"]
    note: str | None = Field(None, max_length=200)


class ConsentImportRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: ChannelName
    state: Literal["opted_in", "opted_out"]
    address: str = Field(min_length=3, max_length=320, description="phone (any format) or email")
    recorded_at: IsoDateTime | None = Field(None, description="when it was given (naive = UTC)")


class ConsentImport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[ConsentImportRow] = Field(max_length=10000)


class ConsentImportResult(BaseModel):
    recorded: int
    rejected: list[dict[str, Any]]


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: str
    lead_id: uuid.UUID | None
    title: str
    body: str
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None
    unread: int


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(min_length=1, max_length=32)
    feed: StrictBool = True
    email: StrictBool = True


class PreferenceList(BaseModel):
    items: list[PreferenceIn]
