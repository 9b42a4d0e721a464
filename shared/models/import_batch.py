"""CSV imports as batches: progress and counts on the batch, one keyed row per imported line (for re-import
and undo)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin


class ImportBatch(IdMixin, OrgMixin, TimestampMixin, Base):
    __tablename__ = "import_batches"

    created_by_id: Mapped[uuid.UUID | None]
    filename: Mapped[str | None] = mapped_column(String(255))
    preset: Mapped[str] = mapped_column(String(32), default="generic")
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    default_property_id: Mapped[uuid.UUID | None]
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed|undone
    content: Mapped[bytes | None] = mapped_column(LargeBinary)  # the file until it has been read
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    errors: Mapped[list[Any]] = mapped_column(JSONB, default=list)  # rejected rows: row, field, message
    details: Mapped[list[Any]] = mapped_column(JSONB, default=list)  # why rows attached / went to review (capped)
    ignored_columns: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    failure: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    undone_at: Mapped[datetime | None]


class ImportRow(IdMixin, OrgMixin, Base):
    """What one imported line did. `row_key` (a hash of its mapped values) makes a re-import a no-op; the
    id lists are exactly what an undo removes."""

    __tablename__ = "import_rows"
    __table_args__ = (
        Index("uq_import_rows_org_id_row_key", "org_id", "row_key", unique=True),
        Index("ix_import_rows_batch_id", "batch_id"),
    )

    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(Integer)
    row_key: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # created | attached | review
    contact_id: Mapped[uuid.UUID | None]
    lead_id: Mapped[uuid.UUID | None]
    contact_created: Mapped[bool] = mapped_column(Boolean, default=False)
    lead_created: Mapped[bool] = mapped_column(Boolean, default=False)
    event_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(PG_UUID(as_uuid=True)), default=list)
    claimed: Mapped[list[Any]] = mapped_column(JSONB, default=list)  # [[kind, value], …] added to a known renter
    review_item_id: Mapped[uuid.UUID | None]
