from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgLedMixin, utcnow


class LeadEvent(IdMixin, OrgLedMixin, Base):
    """Append-only timeline entry. Metrics read it, so it carries time, source, channel and property."""

    __tablename__ = "lead_events"
    __table_args__ = (
        Index("ix_lead_events_lead_id_occurred_at", "lead_id", text("occurred_at DESC"), text("id DESC")),
        Index("ix_lead_events_org_id_type_occurred_at", "org_id", "type", "occurred_at"),
        Index("ix_lead_events_contact_id", "contact_id"),
    )

    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
    actor_type: Mapped[str] = mapped_column(String(16), default="system")  # system|user|renter|integration
    actor_id: Mapped[uuid.UUID | None]
    source: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    property_id: Mapped[uuid.UUID | None]
    inbound_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
