"""Floor plans, units, and the record that a unit brought an aged lead back (once per renter and unit)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin, utcnow


class FloorPlan(IdMixin, OrgMixin, TimestampMixin, Base):
    """A layout a property leases: beds, baths, size, rent range and pet policy."""

    __tablename__ = "floor_plans"
    __table_args__ = (
        UniqueConstraint("org_id", "property_id", "name"),
        CheckConstraint("bedrooms >= 0", name="bedrooms_nonnegative"),
        CheckConstraint("rent_min IS NULL OR rent_min >= 0", name="rent_min_nonnegative"),
        CheckConstraint("rent_max IS NULL OR rent_min IS NULL OR rent_max >= rent_min", name="rent_range_ordered"),
        Index("ix_floor_plans_property_id", "property_id"),
    )

    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    bedrooms: Mapped[int] = mapped_column(Integer)
    bathrooms: Mapped[float | None] = mapped_column(Numeric(3, 1, asdecimal=False))
    sqft: Mapped[int | None] = mapped_column(Integer)
    rent_min: Mapped[int | None] = mapped_column(Integer)
    rent_max: Mapped[int | None] = mapped_column(Integer)
    pet_policy: Mapped[str] = mapped_column(String(16), default="case_by_case", server_default="case_by_case")
    pet_notes: Mapped[str | None] = mapped_column(Text)


class Unit(IdMixin, OrgMixin, TimestampMixin, Base):
    """A rentable unit: its floor plan, asking rent, the date it can be moved into, and its status."""

    __tablename__ = "units"
    __table_args__ = (
        UniqueConstraint("org_id", "property_id", "number"),
        CheckConstraint("rent IS NULL OR rent >= 0", name="rent_nonnegative"),
        CheckConstraint("status IN ('available', 'on_notice', 'leased', 'down')", name="status_known"),
        Index("ix_units_property_id_status", "property_id", "status"),
        Index("ix_units_floor_plan_id", "floor_plan_id"),
        Index("ix_units_org_id_available_since", "org_id", "available_since"),
    )

    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    floor_plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("floor_plans.id", ondelete="RESTRICT"))
    number: Mapped[str] = mapped_column(String(32))
    rent: Mapped[int | None] = mapped_column(Integer)
    available_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="available")
    # when the unit last became available (added as available, or moved to available): the daily digest
    # of newly available units reads it
    available_since: Mapped[datetime | None]


class LeadReactivation(IdMixin, OrgMixin, Base):
    """A unit brought an aged lead back. Unique per renter (contact) and unit: never twice."""

    __tablename__ = "lead_reactivations"
    __table_args__ = (
        UniqueConstraint("org_id", "contact_id", "unit_id"),
        Index("ix_lead_reactivations_lead_id", "lead_id"),
        Index("ix_lead_reactivations_unit_id", "unit_id"),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
