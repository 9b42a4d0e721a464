from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin, utcnow

# The time a tour keeps its agent (or, self-guided, the property) busy: its length plus the buffer after it.
BUSY_RANGE = "tstzrange(starts_at, busy_until, '[)')"


class Tour(IdMixin, OrgMixin, TimestampMixin, Base):
    """A showing: scheduled, completed, canceled or no-show.

    Two exclusion constraints (btree_gist) make double booking impossible even for racing requests: a
    scheduled tour's busy range [starts_at, busy_until) may not overlap another scheduled tour of the same
    agent, nor (self-guided tours, which have no agent) another self-guided tour of the same property.
    """

    __tablename__ = "tours"
    __table_args__ = (
        Index("ix_tours_lead_id", "lead_id"),
        Index("ix_tours_org_id_starts_at", "org_id", "starts_at"),
        Index("ix_tours_agent_id_starts_at", "agent_id", "starts_at"),
        CheckConstraint("ends_at > starts_at AND busy_until >= ends_at", name="times_ordered"),
        ExcludeConstraint(
            (text("agent_id"), "="),
            (text(BUSY_RANGE), "&&"),
            name="ex_tours_agent_busy",
            using="gist",
            where=text("status = 'scheduled' AND agent_id IS NOT NULL"),
        ),
        ExcludeConstraint(
            (text("property_id"), "="),
            (text(BUSY_RANGE), "&&"),
            name="ex_tours_self_guided_busy",
            using="gist",
            where=text("status = 'scheduled' AND tour_type = 'self_guided' AND agent_id IS NULL"),
        ),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    property_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("properties.id", ondelete="SET NULL"))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    busy_until: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    tour_type: Mapped[str] = mapped_column(String(16), default="in_person")
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    notes: Mapped[str | None] = mapped_column(Text)
    canceled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    # bumped on every change: the SEQUENCE of the tour's iCalendar event
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class TourChange(IdMixin, OrgMixin, Base):
    """History of a tour: booked, rescheduled, reassigned, canceled, completed, no_show. Never updated."""

    __tablename__ = "tour_changes"
    __table_args__ = (Index("ix_tour_changes_tour_id", "tour_id"),)

    tour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tours.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    # the tour's sequence after this change: orders history when several changes share a clock tick
    sequence: Mapped[int] = mapped_column(Integer)
    from_starts_at: Mapped[datetime | None]
    to_starts_at: Mapped[datetime | None]
    from_agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    to_agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class TourSettings(IdMixin, OrgMixin, TimestampMixin, Base):
    """A property's tour rules: length, buffer, slot interval, notice, types offered, and default hours
    (for agents without their own working hours, and for self-guided tours)."""

    __tablename__ = "tour_settings"
    __table_args__ = (
        UniqueConstraint("org_id", "property_id"),
        CheckConstraint("length_minutes BETWEEN 5 AND 480", name="length_range"),
        CheckConstraint("buffer_minutes BETWEEN 0 AND 240", name="buffer_range"),
        CheckConstraint("interval_minutes BETWEEN 5 AND 240", name="interval_range"),
    )

    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    length_minutes: Mapped[int] = mapped_column(Integer, default=30)
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=15)
    interval_minutes: Mapped[int] = mapped_column(Integer, default=30)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=60)
    tour_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    default_hours: Mapped[dict | None] = mapped_column(JSONB)
    self_guided_hours: Mapped[dict | None] = mapped_column(JSONB)


class TourBlackout(IdMixin, OrgMixin, TimestampMixin, Base):
    """A time the property shows nothing (holiday, inspection, staff meeting)."""

    __tablename__ = "tour_blackouts"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ordered"),
        Index("ix_tour_blackouts_property_id_starts_at", "property_id", "starts_at"),
    )

    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(200))
