from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, SmallInteger, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, utcnow


class AuditEntry(IdMixin, OrgMixin, Base):
    """Who changed what: one row per successful write through the API, in the write's own transaction.

    Holds the operation and the ids it touched, never the values written (they may be personal data).
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_org_id_occurred_at_id", "org_id", text("occurred_at DESC"), text("id DESC")),
    )

    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_key_id: Mapped[uuid.UUID | None]
    actor_user_id: Mapped[uuid.UUID | None]
    actor_role: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(200))
    target: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # path ids, e.g. {"lead_id": "…"}
    fields: Mapped[list[str]] = mapped_column(JSONB, default=list)  # names of the body's top-level fields
    status: Mapped[int] = mapped_column(SmallInteger, default=200)
    request_id: Mapped[str | None] = mapped_column(String(64))
