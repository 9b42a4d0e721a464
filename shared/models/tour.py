from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin


class Tour(IdMixin, OrgMixin, TimestampMixin, Base):
    """A showing: scheduled, completed, canceled or no-show."""

    __tablename__ = "tours"
    __table_args__ = (
        Index("ix_tours_lead_id", "lead_id"),
        Index("ix_tours_org_id_starts_at", "org_id", "starts_at"),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    property_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("properties.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    tour_type: Mapped[str] = mapped_column(String(16), default="in_person")
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    notes: Mapped[str | None] = mapped_column(Text)
