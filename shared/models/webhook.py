"""Outgoing integrations: the event stream (outbox), webhook endpoints and their deliveries.

`stream_events` is both the transactional outbox and the pull stream: a row is written in the transaction
that made the change (by `services/api/leads/events.py::add_event` and the review service), with no
position; the single publisher gives it the organization's next `seq` after commit and fans it out to the
subscribed endpoints as `webhook_deliveries`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Identity, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.crypto import EncryptedText
from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin, utcnow


class StreamEvent(Base):
    """One public event. `position` is insertion order (a sequence, never a lock); `seq` is the
    organization's gap-free stream position, assigned by the publisher after commit."""

    __tablename__ = "stream_events"
    __table_args__ = (
        Index("uq_stream_events_org_id_seq", "org_id", "seq", unique=True),
        Index("ix_stream_events_unpublished", "position", postgresql_where=text("seq IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # no index of its own: (org_id, seq) serves every read, and the intake hot path writes this table
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, Identity(always=False))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(48))
    lead_id: Mapped[uuid.UUID | None]
    source_event_id: Mapped[uuid.UUID | None]  # the lead_events row it came from, if any
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the final versioned body, set on publish
    published_at: Mapped[datetime | None]


class StreamHead(Base):
    """The last `seq` given per organization. Only the publisher writes it (never an intake transaction)."""

    __tablename__ = "stream_heads"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookEndpoint(IdMixin, OrgMixin, TimestampMixin, Base):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(48)), default=list)
    payload_version: Mapped[int] = mapped_column(SmallInteger, default=1)
    secret: Mapped[str] = mapped_column(EncryptedText)  # whsec_…, encrypted at rest (shared/crypto.py)
    previous_secret: Mapped[str | None] = mapped_column(EncryptedText)
    previous_secret_expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    created_by_id: Mapped[uuid.UUID | None]


class WebhookDelivery(IdMixin, OrgMixin, TimestampMixin, Base):
    """One event for one endpoint. Sent in `seq` order per (endpoint, lead): a later one waits while an
    earlier one for the same lead is still pending."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("uq_webhook_deliveries_endpoint_id_event_id", "org_id", "endpoint_id", "event_id", unique=True),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index(
            "ix_webhook_deliveries_lead_order",
            "endpoint_id",
            "lead_id",
            "seq",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint_id_seq", "endpoint_id", text("seq DESC")),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream_events.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    lead_id: Mapped[uuid.UUID | None]
    event_type: Mapped[str] = mapped_column(String(48))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    log: Mapped[list[Any]] = mapped_column(JSONB, default=list)
