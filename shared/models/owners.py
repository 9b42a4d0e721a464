from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin
from shared.models.lead import NO_PROPERTY


class AssignmentSetting(IdMixin, OrgMixin, TimestampMixin, Base):
    """How a property picks a lead's owner (`property_id` null: the organization's default)."""

    __tablename__ = "assignment_settings"
    __table_args__ = (
        Index(
            "uq_assignment_settings_org_property",
            "org_id",
            text(f"COALESCE(property_id, '{NO_PROPERTY}'::uuid)"),
            unique=True,
        ),
    )

    property_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    strategy: Mapped[str] = mapped_column(String(16), default="round_robin", server_default="round_robin")
    fallback_strategy: Mapped[str] = mapped_column(String(16), default="round_robin", server_default="round_robin")
    fixed_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    offers_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    offer_timeout_minutes: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    sla_minutes: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    sla_after_hours_minutes: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    sla_reassign: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class RoundRobinCursor(IdMixin, OrgMixin, Base):
    """Weighted round robin state per pool (a property, or NO_PROPERTY for the organization's fallback).

    Stride scheduling: the next owner is the available member with the lowest `pass`, which then grows by
    STRIDE / weight; a weight-2 agent is picked twice as often, exactly, however leads arrive.
    """

    __tablename__ = "round_robin_cursors"
    __table_args__ = (Index("uq_round_robin_cursors_pool", "org_id", "pool_id", "user_id", unique=True),)

    pool_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    pass_value: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    assigned_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_assigned_at: Mapped[datetime | None]


class LeadOffer(IdMixin, OrgMixin, TimestampMixin, Base):
    """A lead offered to one agent: pending until accepted, declined, expired (the cron) or canceled."""

    __tablename__ = "lead_offers"
    __table_args__ = (
        Index("ix_lead_offers_due", "expires_at", postgresql_where=text("status = 'pending'")),
        Index(
            "uq_lead_offers_pending_lead", "org_id", "lead_id", unique=True, postgresql_where=text("status = 'pending'")
        ),
        Index("ix_lead_offers_user_id_status", "user_id", "status"),
        Index("ix_lead_offers_lead_id", "lead_id"),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(SmallInteger, default=1)
    offered_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    answer_seconds: Mapped[int | None] = mapped_column(Integer)


class LeadCollaborator(IdMixin, OrgMixin, TimestampMixin, Base):
    """A lead user who is not its owner: sees and works the lead (the domain texts' lead user)."""

    __tablename__ = "lead_collaborators"
    __table_args__ = (
        Index("uq_lead_collaborators_lead_user", "org_id", "lead_id", "user_id", unique=True),
        Index("ix_lead_collaborators_user_id", "user_id"),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class SlaTimer(IdMixin, OrgMixin, TimestampMixin, Base):
    """When a new lead must have had a human touch; drained by the SLA cron (pending → met | breached)."""

    __tablename__ = "sla_timers"
    __table_args__ = (
        Index("uq_sla_timers_lead_id", "org_id", "lead_id", unique=True),
        Index("ix_sla_timers_due", "due_at", postgresql_where=text("status = 'pending'")),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    fired_at: Mapped[datetime | None]
