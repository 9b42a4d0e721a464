from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, Numeric, SmallInteger, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgLedMixin, TimestampMixin

OPEN_STATUSES_SQL = "status NOT IN ('lost', 'leased')"
NO_PROPERTY = "00000000-0000-0000-0000-000000000000"
# How a writer locks a lead row: FOR NO KEY UPDATE (`with_for_update(key_share=True)` on a select, this dict as
# `with_for_update=` of session.get / refresh). No writer changes a lead's key (id, org_id), and the weaker lock
# does not conflict with the FOR KEY SHARE a foreign-key check takes on the lead when a row that points at it is
# written (an event, a task, a message, the inbound row's outcome). With FOR UPDATE, a reply's settle and the
# intake's outcome rows of the same leads deadlocked under a burst (each waited for the other's lead), and the
# renter's reply waited for the cron (~2 min). A DELETE still takes FOR UPDATE and waits for these.
LEAD_LOCK: dict[str, bool] = {"key_share": True}


class Lead(IdMixin, OrgLedMixin, TimestampMixin, Base):
    """A contact's pursuit of one property. At most one open lead per contact and property."""

    __tablename__ = "leads"
    __table_args__ = (
        Index(
            "uq_leads_open_per_contact_property",
            "org_id",
            "contact_id",
            text(f"COALESCE(property_id, '{NO_PROPERTY}'::uuid)"),
            unique=True,
            postgresql_where=text(OPEN_STATUSES_SQL),
        ),
        # newest first, with the search text for a search's walk from the index alone (migration r16)
        Index(
            "ix_leads_org_id_created_at_id_search",
            "org_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_include=["search_text"],
        ),
        Index("ix_leads_org_id_updated_at_id", "org_id", text("updated_at DESC"), text("id DESC")),
        Index("ix_leads_org_id_status_created_at", "org_id", "status", text("created_at DESC")),
        Index("ix_leads_org_id_property_id_created_at", "org_id", "property_id", text("created_at DESC")),
        # one stage at one property, newest first (a leasing board's column; migration p21s)
        Index(
            "ix_leads_org_id_property_id_status_created_at", "org_id", "property_id", "status", text("created_at DESC")
        ),
        Index("ix_leads_org_id_owner_id_created_at", "org_id", "owner_id", text("created_at DESC")),
        # an agent's pool: a property's unowned leads, newest first (owners/scope.py; migration a25p)
        Index(
            "ix_leads_pool",
            "org_id",
            "property_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("owner_id IS NULL"),
        ),
        # one stage of one agent's leads, newest first ("my new leads"; migration p21s)
        Index("ix_leads_org_id_owner_id_status_created_at", "org_id", "owner_id", "status", text("created_at DESC")),
        Index("ix_leads_org_id_source_created_at", "org_id", "source", text("created_at DESC")),
        Index(
            "ix_leads_next_action_due",
            "org_id",
            "next_action_due_at",
            postgresql_where=text("next_action_due_at IS NOT NULL"),
        ),
        Index("ix_leads_contact_id", "contact_id"),
        # free-text search on the lead itself (migration r16): no contact join while walking leads
        Index(
            "ix_leads_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        # metrics health: open leads by next action due (overdue = with due date - due at or after now, a short
        # range scan); restricted callers count open leads from the index alone (migration m18r)
        Index(
            "ix_leads_metrics_open",
            "org_id",
            "next_action_due_at",
            postgresql_include=["property_id", "source", "kind", "owner_id", "next_action_type"],
            postgresql_where=text(OPEN_STATUSES_SQL),
        ),
    )

    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    property_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("properties.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="tenant", server_default="tenant")
    status: Mapped[str] = mapped_column(String(32), default="new")
    status_label_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("status_labels.id", ondelete="SET NULL"))
    temperature: Mapped[str] = mapped_column(String(8), default="hot")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str | None] = mapped_column(String(64))
    sub_source: Mapped[str | None] = mapped_column(String(200))
    latest_source: Mapped[str | None] = mapped_column(String(64))
    move_in_date: Mapped[date | None] = mapped_column(Date)
    move_in_text: Mapped[str | None] = mapped_column(String(200))
    bedrooms: Mapped[int | None] = mapped_column(Integer)
    bathrooms: Mapped[float | None] = mapped_column(Numeric(3, 1, asdecimal=False))
    budget_min: Mapped[int | None] = mapped_column(Integer)
    budget_max: Mapped[int | None] = mapped_column(Integer)
    pets: Mapped[bool | None]
    pets_text: Mapped[str | None] = mapped_column(String(300))
    unit_type: Mapped[str | None] = mapped_column(String(100))
    lease_length_months: Mapped[int | None] = mapped_column(Integer)
    occupants: Mapped[int | None] = mapped_column(Integer)
    preferred_tour_times: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    next_action_type: Mapped[str | None] = mapped_column(String(32))
    next_action_due_at: Mapped[datetime | None]
    next_action_owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # who chose the next action: {"set_by": "rule", rule, version, scope, log_id, trigger} or {"set_by": "user"}
    next_action_source: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    first_response_at: Mapped[datetime | None]
    first_response_seconds: Mapped[int | None] = mapped_column(Integer)
    # speed to lead split by who answered first: automation (text-back, acknowledgement) or a person
    first_automated_response_at: Mapped[datetime | None]
    first_human_response_at: Mapped[datetime | None]
    # people outrank automation: set while a person holds the conversation (a sensitive-conversation review,
    # a takeover); automated sends and rules skip the lead until it is cleared
    automation_paused_at: Mapped[datetime | None]
    automation_paused_reason: Mapped[str | None] = mapped_column(String(64))
    # a number the renter gave that is another contact's identity (review pending): shown so an agent can
    # call back, never matched on
    callback_phone: Mapped[str | None] = mapped_column(String(32))
    last_touch_at: Mapped[datetime | None]
    # unowned on purpose: waiting in its property's pool for a claim (strategy pool, or everyone declined)
    pooled_at: Mapped[datetime | None]
    lost_reason: Mapped[str | None] = mapped_column(String(32))
    lost_reason_text: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    # furthest funnel stage ever reached (FUNNEL index): a lead that toured and was lost still counts as toured
    reached_rank: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    # bumped on every write; the ETag of PATCH/If-Match
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # saved unit criteria (tours/units): match units of every property of the organization, not only the
    # lead's; receive the daily digest of newly available matching units
    match_portfolio: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    unit_digest_opt_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # the contact's search text, copied by triggers (migration r16); written by PostgreSQL only, never read back
    search_text: Mapped[str] = mapped_column(Text, server_default=text("''"), deferred=True)
