"""Messaging: the outbox, providers per organization, templates, the consent ledger, notifications."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.crypto import EncryptedText
from shared.models.base import Base, IdMixin, OrgLedMixin, OrgMixin, TimestampMixin

NO_PROPERTY = "00000000-0000-0000-0000-000000000000"


class OutboundMessage(IdMixin, OrgLedMixin, TimestampMixin, Base):
    """One SMS or email: a row first (queued | suppressed + reason), then sending → sent → delivered | failed.

    Written in the transaction that decided to send; sent by the worker after commit (docs/messaging.md).
    """

    __tablename__ = "outbound_messages"
    __table_args__ = (
        UniqueConstraint("org_id", "idempotency_key"),
        Index("ix_outbound_messages_lead_id_created_at", "lead_id", text("created_at DESC"), text("id DESC")),
        Index("ix_outbound_messages_due", "not_before", postgresql_where=text("status = 'queued'")),
        Index("ix_outbound_messages_sending", "sending_at", postgresql_where=text("status = 'sending'")),
        Index("ix_outbound_messages_provider_message_id", "provider_message_id"),
    )

    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # set for a notification to a staff member (then the renter is not the recipient)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))  # sms | email
    direction: Mapped[str] = mapped_column(String(8), default="outbound")
    kind: Mapped[str] = mapped_column(String(16))  # reply | proactive | human | notification
    status: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str | None] = mapped_column(String(200))  # why it was sent, suppressed or failed
    template: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    to_address: Mapped[str | None] = mapped_column(String(320))
    from_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default="{}")
    warning: Mapped[str | None] = mapped_column(String(64))
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    not_before: Mapped[datetime | None]
    queued_at: Mapped[datetime | None]
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    suppressed_at: Mapped[datetime | None]


class MessagingProvider(TimestampMixin, Base):
    """Which provider sends an organization's SMS or email. `secrets` is write-only (never returned or logged)."""

    __tablename__ = "messaging_providers"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)  # sms | email
    provider: Mapped[str] = mapped_column(String(16))  # twilio | smtp | record
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    # a JSON object of the provider's secrets, encrypted at rest (shared.crypto); read with secret_values()
    secrets: Mapped[str] = mapped_column(EncryptedText, default="{}")

    def secret_values(self) -> dict[str, Any]:
        values = json.loads(self.secrets or "{}")
        return values if isinstance(values, dict) else {}


class MessagingSettings(TimestampMixin, Base):
    """Per-organization messaging texts and windows; defaults apply when there is no row."""

    __tablename__ = "messaging_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    help_text: Mapped[str | None] = mapped_column(Text)
    inbound_email: Mapped[str | None] = mapped_column(String(320))
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # shared.working_hours document
    sensitive_sla_minutes: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    application_url: Mapped[str | None] = mapped_column(String(2000))  # the default {{application_link}}


class MessageTemplate(IdMixin, OrgMixin, TimestampMixin, Base):
    """A message text with {{variables}}, per organization and optionally per property."""

    __tablename__ = "message_templates"
    __table_args__ = (
        Index(
            "uq_message_templates_key",
            "org_id",
            "key",
            "channel",
            text(f"COALESCE(property_id, '{NO_PROPERTY}'::uuid)"),
            unique=True,
        ),
    )

    property_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)


class ConsentRecord(IdMixin, OrgMixin, TimestampMixin, Base):
    """The consent ledger: every opt-in and opt-out per contact (or bare address) and channel, with its source."""

    __tablename__ = "consent_records"
    __table_args__ = (
        Index("ix_consent_records_contact", "contact_id", "channel", text("recorded_at DESC")),
        Index("ix_consent_records_address", "org_id", "channel", "address", text("recorded_at DESC")),
        UniqueConstraint("org_id", "inbound_id"),
    )

    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    address: Mapped[str | None] = mapped_column(String(320))  # E.164 phone or email the consent is about
    channel: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))  # opted_in | opted_out
    source: Mapped[str] = mapped_column(String(32))  # sms_keyword | unsubscribe_link | agent | import
    detail: Mapped[str | None] = mapped_column(String(200))
    actor_id: Mapped[uuid.UUID | None]
    inbound_id: Mapped[uuid.UUID | None]
    recorded_at: Mapped[datetime]


class Notification(IdMixin, OrgMixin, TimestampMixin, Base):
    """A feed entry for a staff member."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_id_created_at", "user_id", text("created_at DESC"), text("id DESC")),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    read_at: Mapped[datetime | None]


class NotificationPreference(TimestampMixin, Base):
    """Per user and kind: feed and/or email. No row = both on."""

    __tablename__ = "notification_preferences"
    __mapper_args__ = {"primary_key": ("user_id", "kind")}  # identity per user (ids are global); key + org_id

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    feed: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    email: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
