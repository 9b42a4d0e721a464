from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin


class User(IdMixin, OrgMixin, TimestampMixin, Base):
    """A staff member: lead owner, task assignee, actor on the timeline."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # E.164; where offers and notifications reach the agent by text
    mobile_phone: Mapped[str | None] = mapped_column(String(32))
    # out of office until then: skipped by assignment, offers and tour slots
    away_until: Mapped[datetime | None]
