"""Erasure on request: a renter's personal data goes; the leasing record and its counts stay.

What goes, for the contact and every contact merged into it: names, emails and phones (the identities
themselves), free text about them on leads, tasks and tours, every timeline event's payload except the
non-personal keys metrics read (statuses, sources, owners, times), inbound raw payloads (body, headers,
parsed signal), review reasons and merge snapshots (so a merge involving them can no longer be undone).
What stays: the contact and lead rows with their ids, statuses, sources, owners, properties and timestamps,
and the events' types and times, so funnels, speed to lead and counts do not change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import String, bindparam, delete, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.messaging.outbox import erase_messages
from shared import clock
from shared.errors import NotFound
from shared.models import Contact, ContactIdentity, InboundMessage, Lead, Merge, ReviewItem, Task, Tour, TourChange

# timeline payload keys that carry no personal data and that metrics and the pipeline read
KEPT_EVENT_KEYS = (
    "from",
    "to",
    "reason",
    "cause",
    "source",
    "sub_source",
    "strategy",
    "owner_id",
    "user_id",
    "offer_id",
    "offered_at",
    "accepted_at",
    "seconds",
    "tour_id",
    "starts_at",
    "status",
    "template",
    "message_id",
    "rule",
    "rule_version",
    "unit_id",
    "category",
)

_SCRUB_EVENTS = text(
    """
    UPDATE lead_events SET data = COALESCE(
        (SELECT jsonb_object_agg(key, value) FROM jsonb_each(data) WHERE key = ANY(:kept)), '{}'::jsonb
    ) || '{"erased": true}'::jsonb
    WHERE org_id = :org_id AND (lead_id = ANY(:lead_ids) OR contact_id = ANY(:contact_ids))
    """
).bindparams(
    bindparam("kept", type_=ARRAY(String)),
    bindparam("lead_ids", type_=ARRAY(PG_UUID(as_uuid=True))),
    bindparam("contact_ids", type_=ARRAY(PG_UUID(as_uuid=True))),
)


@dataclass(frozen=True)
class Erased:
    contact_ids: list[uuid.UUID]
    lead_count: int
    identities_removed: int
    inbound_scrubbed: int


async def erase_contact(session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID) -> Erased:
    contact = await session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.org_id == org_id).with_for_update(key_share=True)
    )
    if contact is None:
        raise NotFound("Contact not found.")
    contact_ids = [contact.id, *await _merged_into(session, org_id, contact.id)]
    lead_ids = list(
        await session.scalars(select(Lead.id).where(Lead.org_id == org_id, Lead.contact_id.in_(contact_ids)))
    )
    now = clock.now()
    await session.execute(
        update(Contact)
        .where(Contact.org_id == org_id, Contact.id.in_(contact_ids))
        .values(first_name=None, last_name=None, full_name=None, primary_email=None, primary_phone=None, erased_at=now)
    )
    removed = await session.execute(
        delete(ContactIdentity).where(ContactIdentity.org_id == org_id, ContactIdentity.contact_id.in_(contact_ids))
    )
    await session.execute(
        update(Lead)
        .where(Lead.org_id == org_id, Lead.id.in_(lead_ids))
        .values(move_in_text=None, pets_text=None, lost_reason_text=None, callback_phone=None, updated_at=now)
    )
    await session.execute(
        update(Task).where(Task.org_id == org_id, Task.lead_id.in_(lead_ids)).values(description=None)
    )
    await session.execute(
        update(Tour).where(Tour.org_id == org_id, Tour.lead_id.in_(lead_ids)).values(notes=None, cancel_reason=None)
    )
    # tours' history: the free-text reasons given for a cancel or reschedule
    their_tours = select(Tour.id).where(Tour.org_id == org_id, Tour.lead_id.in_(lead_ids))
    await session.execute(
        update(TourChange).where(TourChange.org_id == org_id, TourChange.tour_id.in_(their_tours)).values(reason=None)
    )
    await session.execute(
        _SCRUB_EVENTS,
        {
            "org_id": org_id,
            "kept": list(KEPT_EVENT_KEYS),
            "lead_ids": lead_ids,
            "contact_ids": contact_ids,
        },
    )
    scrubbed = await session.execute(
        update(InboundMessage)
        .where(
            InboundMessage.org_id == org_id,
            (InboundMessage.contact_id.in_(contact_ids)) | (InboundMessage.lead_id.in_(lead_ids)),
        )
        .values(body=b"", headers={}, query={}, signal=None, match=None)
    )
    await session.execute(
        update(ReviewItem)
        .where(ReviewItem.org_id == org_id, ReviewItem.contact_id.in_(contact_ids))
        .values(reasons=[], resolution_note=None)
    )
    await session.execute(
        update(Merge)
        .where(Merge.org_id == org_id, Merge.survivor_id.in_(contact_ids) | Merge.merged_id.in_(contact_ids))
        .values(snapshot={}, field_choices={})
    )
    await erase_messages(session, org_id, contact_ids, lead_ids)  # outbox texts/addresses, notification texts
    return Erased(
        contact_ids=contact_ids,
        lead_count=len(lead_ids),
        identities_removed=removed.rowcount or 0,  # type: ignore[attr-defined]
        inbound_scrubbed=scrubbed.rowcount or 0,  # type: ignore[attr-defined]
    )


async def _merged_into(session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID) -> list[uuid.UUID]:
    """Every contact merged (directly or through a chain) into this one: the same person."""
    found: list[uuid.UUID] = []
    frontier = [contact_id]
    while frontier:
        rows = list(
            await session.scalars(
                select(Contact.id).where(Contact.org_id == org_id, Contact.merged_into_id.in_(frontier))
            )
        )
        rows = [row for row in rows if row not in found and row != contact_id]
        found.extend(rows)
        frontier = rows
    return found
