from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgLedMixin, TimestampMixin


class InboundMessage(IdMixin, OrgLedMixin, TimestampMixin, Base):
    """A delivery exactly as received, stored before it is acknowledged; the inbox of the intake worker."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("org_id", "delivery_key"),
        Index("ix_inbound_messages_org_id_received_at", "org_id", text("received_at DESC"), text("id DESC")),
        Index("ix_inbound_messages_stuck", "received_at", postgresql_where=text("status = 'received'")),
        Index("ix_inbound_messages_property_id", "property_id", postgresql_where=text("property_id IS NOT NULL")),
        Index(
            "ix_inbound_messages_org_id_received", "org_id", "received_at", postgresql_where=text("status = 'received'")
        ),
    )

    kind: Mapped[str] = mapped_column(String(32))
    delivery_key: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(200), default="")
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    query: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="received")
    reason: Mapped[str | None] = mapped_column(Text)
    parser: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    signal: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    match: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL", deferrable=True, initially="IMMEDIATE")
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    # the configured property the delivery concerns, when resolved (also for ignored rows: anonymous callers)
    property_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("properties.id", ondelete="SET NULL"))
    processed_at: Mapped[datetime | None]
    # a worker job's lease on a claimed row (issue #16 batches): other jobs skip it until then
    claimed_until: Mapped[datetime | None]
