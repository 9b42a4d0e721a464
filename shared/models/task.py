from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin


class Task(IdMixin, OrgMixin, TimestampMixin, Base):
    """A to-do on a lead (call back, confirm tour...), with an owner and a due time."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_lead_id", "lead_id"),
        Index("ix_tasks_open_due", "org_id", "owner_id", "due_at", postgresql_where=text("status = 'open'")),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    type: Mapped[str] = mapped_column(String(16), default="follow_up")
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    due_at: Mapped[datetime | None]
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by_id: Mapped[uuid.UUID | None]
    completed_at: Mapped[datetime | None]
    # set when a rule created it, so rules can find and close their own tasks
    rule: Mapped[str | None] = mapped_column(String(32))
