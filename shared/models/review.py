from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin


class ReviewItem(IdMixin, OrgMixin, TimestampMixin, Base):
    """Something a person must decide: a possible duplicate, or a sensitive conversation."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_open", "org_id", "created_at", postgresql_where=text("status = 'open'")),)

    kind: Mapped[str] = mapped_column(String(32), default="possible_duplicate")
    status: Mapped[str] = mapped_column(String(16), default="open")
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    inbound_id: Mapped[uuid.UUID | None]
    candidate_contact_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(PG_UUID(as_uuid=True)), default=list, server_default="{}"
    )
    reasons: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolved_by_id: Mapped[uuid.UUID | None]
    resolved_at: Mapped[datetime | None]
    merge_id: Mapped[uuid.UUID | None]


class ContactPairDecision(IdMixin, OrgMixin, TimestampMixin, Base):
    """A remembered 'keep apart' so the same two contacts are not asked about again."""

    __tablename__ = "contact_pair_decisions"
    __table_args__ = (UniqueConstraint("org_id", "contact_low_id", "contact_high_id"),)

    contact_low_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    contact_high_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(String(16), default="keep_apart")
    decided_by_id: Mapped[uuid.UUID | None]


class Merge(IdMixin, OrgMixin, TimestampMixin, Base):
    """One merge of two contacts, with the full before-image of every row it touched, for an exact undo."""

    __tablename__ = "merges"

    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    merged_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    field_choices: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[uuid.UUID | None]
    undone_at: Mapped[datetime | None]
    undone_by_id: Mapped[uuid.UUID | None]


class BlocklistEntry(IdMixin, OrgMixin, TimestampMixin, Base):
    """A placeholder or shared value that must never match two people (none@none.com, the office line)."""

    __tablename__ = "blocklist_entries"
    __table_args__ = (UniqueConstraint("org_id", "kind", "value"),)

    kind: Mapped[str] = mapped_column(String(16))  # email | phone | email_domain
    value: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str | None] = mapped_column(String(200))
