from __future__ import annotations

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin


class StatusLabel(IdMixin, OrgMixin, TimestampMixin, Base):
    """An organization's own status name, mapped onto a canonical status so metrics stay comparable."""

    __tablename__ = "status_labels"
    __table_args__ = (UniqueConstraint("org_id", "label"),)

    label: Mapped[str] = mapped_column(String(100))
    canonical_status: Mapped[str] = mapped_column(String(32))
