"""Appending to the timeline. Events are never updated or deleted (a merge undo restores, it does not edit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol, TypedDict, Unpack

from sqlalchemy.ext.asyncio import AsyncSession
from uuid6 import uuid7

from services.api import txmemo
from services.api.webhooks.outbox import record_timeline_event
from shared import clock
from shared.models import Lead, LeadEvent


class LeadRef(Protocol):
    """What a timeline entry reads of its lead: a `Lead`, or the few columns a set-based writer selected."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def org_id(self) -> uuid.UUID: ...
    @property
    def contact_id(self) -> uuid.UUID: ...
    @property
    def property_id(self) -> uuid.UUID | None: ...


class EventFields(TypedDict, total=False):
    """What a caller may say about a timeline entry besides its lead and type (the rest comes from the lead)."""

    occurred_at: datetime | None
    actor_type: str
    actor_id: uuid.UUID | None
    source: str | None
    channel: str | None
    inbound_id: uuid.UUID | None
    data: dict[str, Any] | None


def add_event(session: AsyncSession, lead: LeadRef, type: str, **fields: Unpack[EventFields]) -> uuid.UUID:
    """One timeline entry and, for the public types, its event stream row, in this same transaction. An intake
    batch keeps both as values for its one INSERT per table (`txmemo.append_row`). Returns the entry's id."""
    values = _values(lead, type, fields)
    if not txmemo.append_row(session, LeadEvent, values):
        session.add(LeadEvent(**values))
    record_timeline_event(session, values)
    return values["id"]  # type: ignore[no-any-return]


def add_event_row(session: AsyncSession, lead: Lead, type: str, **fields: Unpack[EventFields]) -> LeadEvent:
    """`add_event` for a caller that answers with the entry itself (a person's note or activity)."""
    values = _values(lead, type, fields)
    event = LeadEvent(**values)
    session.add(event)
    record_timeline_event(session, values)
    return event


def _values(lead: LeadRef, type: str, fields: EventFields) -> dict[str, Any]:
    """The entry's columns. Its id is time-ordered (UUIDv7, increasing within the process): what one touch writes
    shares one `occurred_at` (created, the touch, the status it moved), and the timeline breaks that tie by id,
    so the entries read in the order they were written instead of a random one."""
    return {
        "id": uuid7(),
        "org_id": lead.org_id,
        "lead_id": lead.id,
        "contact_id": lead.contact_id,
        "type": type,
        "occurred_at": fields.get("occurred_at") or clock.now(),
        "actor_type": fields.get("actor_type", "system"),
        "actor_id": fields.get("actor_id"),
        "source": fields.get("source"),
        "channel": fields.get("channel"),
        "property_id": lead.property_id,
        "inbound_id": fields.get("inbound_id"),
        "data": fields.get("data") or {},
    }


def add_status_event(
    session: AsyncSession,
    lead: Lead,
    previous: str,
    *,
    occurred_at: datetime | None = None,
    actor_type: str = "system",
    actor_id: uuid.UUID | None = None,
    reason: str | None = None,
    cause: str | None = None,
    source: str | None = None,
    inbound_id: uuid.UUID | None = None,
    **extra: Any,
) -> uuid.UUID:
    """A status change on the timeline: {from, to, reason, cause}. Metrics and migrations read this shape."""
    data: dict[str, Any] = {"from": str(previous), "to": str(lead.status), "reason": reason, "cause": cause, **extra}
    return add_event(
        session,
        lead,
        "status_changed",
        occurred_at=occurred_at,
        actor_type=actor_type,
        actor_id=actor_id,
        source=source,
        inbound_id=inbound_id,
        data=data,
    )
