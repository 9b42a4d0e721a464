from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin


class PropertyTeamMember(IdMixin, OrgMixin, TimestampMixin, Base):
    """An agent on a property's leasing team: its assignment weight and working hours.

    `working_hours` is a shared.working_hours.WorkingHours document in the property's timezone; null means
    available whenever the user is active and not away. Owners (assignment), tours (slots) and the SLA
    clock read the same rows.
    """

    __tablename__ = "property_team_members"
    __table_args__ = (
        UniqueConstraint("org_id", "property_id", "user_id"),
        CheckConstraint("weight BETWEEN 1 AND 10", name="weight_range"),
        Index("ix_property_team_members_user_id", "user_id"),
    )

    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    weight: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    working_hours: Mapped[dict | None] = mapped_column(JSONB)
