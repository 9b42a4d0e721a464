"""Automation as data: rule-set versions, timed steps, and the log that answers "why"."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgLedMixin, OrgMixin, TimestampMixin, utcnow


class AutomationRuleSet(IdMixin, OrgMixin, Base):
    """One saved version of a scope's rules (`org`, `property:<id>`, `label:<id>`); versions are never edited."""

    __tablename__ = "automation_rule_sets"
    __table_args__ = (UniqueConstraint("org_id", "scope", "version"),)

    scope: Mapped[str] = mapped_column(String(64))
    property_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_by_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))


class ScheduledAction(IdMixin, OrgLedMixin, TimestampMixin, Base):
    """A timed step (sequence step, reminder, time trigger): a row with a due time, drained by a cron job."""

    __tablename__ = "scheduled_actions"
    __table_args__ = (
        UniqueConstraint("org_id", "idempotency_key"),
        Index("ix_scheduled_actions_due", "due_at", postgresql_where=text("status = 'pending'")),
        Index("ix_scheduled_actions_lead_id_status", "lead_id", "status"),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    kind: Mapped[str] = mapped_column(String(16))  # sequence_step | time_rule | review_sla
    rule_id: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int] = mapped_column(Integer)
    rule_scope: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[str | None] = mapped_column(String(64))
    step: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    due_at: Mapped[datetime]
    grace_seconds: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|skipped|suppressed|canceled
    reason: Mapped[str | None] = mapped_column(String(200))
    processed_at: Mapped[datetime | None]


class AutomationLog(IdMixin, OrgMixin, Base):
    """Every rule evaluated for a lead (fired, or skipped and why), and every decision it took."""

    __tablename__ = "automation_log"
    __table_args__ = (
        Index("ix_automation_log_lead_id_occurred_at", "lead_id", "occurred_at"),
        Index("ix_automation_log_contact_id_occurred_at", "contact_id", "occurred_at"),
    )

    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    trigger: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str | None] = mapped_column(String(64))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    rule_scope: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(32))  # null: the rule's evaluation row
    outcome: Mapped[str] = mapped_column(String(16))  # fired|skipped|suppressed|decided|canceled|done
    reason: Mapped[str | None] = mapped_column(String(200))
    scheduled_action_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
