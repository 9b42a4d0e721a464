from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, utcnow


class SignalApplication(Base):
    """Idempotency record of POST /v1/internal/signals: one row per applied inbound message."""

    __tablename__ = "signal_applications"
    __mapper_args__ = {"primary_key": ("inbound_id",)}  # identity by inbound id (global); key + org_id
    __table_args__ = (Index("ix_signal_applications_org_id_applied_at", "org_id", "applied_at"),)

    inbound_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    created: Mapped[bool] = mapped_column(Boolean)
    contact_created: Mapped[bool] = mapped_column(Boolean, default=False)
    review_item_id: Mapped[uuid.UUID | None]
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
