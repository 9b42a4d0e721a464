"""Merging two contacts into one, and undoing it exactly.

A merge keeps a full before-image of every row it changes (both contacts, the merged contact's identities
and leads), so an undo restores them column for column. Consent merges to the most restrictive state per
channel: an opt-out on either side survives. Both contacts are locked in id order, so a merge and a signal
for the same renter serialize instead of interleaving.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api.automation.merge import after_merge
from services.api.leads.events import add_event
from services.api.merges.snapshot import restore_rows, snapshot_rows
from services.api.owners.scope import contact_ids_in
from shared import clock
from shared.enums import ConsentState, EventType, LeadStatus, LostReason, ReviewStatus, Temperature
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import Contact, ContactIdentity, Lead, Merge, ReviewItem

MERGEABLE_FIELDS = ("kind", "full_name", "first_name", "last_name", "primary_email", "primary_phone")
# most restrictive first: an explicit opt-out beats not knowing, which beats an opt-in
CONSENT_ORDER = (ConsentState.opted_out, ConsentState.unknown, ConsentState.opted_in)
CLOSED = (LeadStatus.lost, LeadStatus.leased)


def most_restrictive(first: str, second: str) -> str:
    return min(first, second, key=lambda state: CONSENT_ORDER.index(ConsentState(state)))


async def _lock_contacts(session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, Contact]:
    rows = await session.scalars(
        select(Contact)
        .where(Contact.org_id == org_id, Contact.id.in_(ids))
        .order_by(Contact.id)
        .with_for_update(key_share=True)
    )
    return {row.id: row for row in rows}


async def merge_contacts(
    session: AsyncSession,
    org_id: uuid.UUID,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    *,
    field_choices: dict[str, str] | None = None,
    reason: str | None = None,
    actor_id: uuid.UUID | None = None,
) -> Merge:
    if survivor_id == merged_id:
        raise ValidationFailed(
            "A contact cannot be merged into itself.", errors=[{"field": "body.contact_id", "message": "same contact"}]
        )
    choices = field_choices or {}
    unknown = [
        field for field, side in choices.items() if field not in MERGEABLE_FIELDS or side not in ("survivor", "merged")
    ]
    if unknown:
        raise ValidationFailed(
            "Unknown field choices.",
            errors=[
                {"field": f"body.field_choices.{field}", "message": f"one of {MERGEABLE_FIELDS} → survivor|merged"}
                for field in unknown
            ],
        )
    contacts = await _lock_contacts(session, org_id, [survivor_id, merged_id])
    if survivor_id not in contacts or merged_id not in contacts:
        raise NotFound("Contact not found.")
    survivor, merged = contacts[survivor_id], contacts[merged_id]
    if survivor.merged_into_id or merged.merged_into_id:
        raise Conflict("One of these contacts was already merged away; undo that merge first.")

    merged_lead_ids = list(await session.scalars(select(Lead.id).where(Lead.contact_id == merged_id)))
    snapshot = {
        "contacts": await snapshot_rows(session, Contact.__table__, "id", [survivor_id, merged_id]),
        "contact_identities": await snapshot_rows(session, ContactIdentity.__table__, "contact_id", [merged_id]),
        "leads": await snapshot_rows(session, Lead.__table__, "id", merged_lead_ids),
    }
    now = clock.now()
    applied = _merge_fields(survivor, merged, choices)
    survivor.sms_consent = most_restrictive(survivor.sms_consent, merged.sms_consent)
    survivor.email_consent = most_restrictive(survivor.email_consent, merged.email_consent)
    survivor.updated_at = now
    merged.merged_into_id = survivor_id
    merged.updated_at = now
    await session.flush()

    folded = await _fold_duplicate_open_leads(session, survivor_id, merged_id, now)
    await session.execute(
        update(ContactIdentity).where(ContactIdentity.contact_id == merged_id).values(contact_id=survivor_id)
    )
    await session.execute(update(Lead).where(Lead.contact_id == merged_id).values(contact_id=survivor_id))
    await _events_follow_their_leads(session, merged_lead_ids)

    merge = Merge(
        id=uuid.uuid4(),
        org_id=org_id,
        survivor_id=survivor_id,
        merged_id=merged_id,
        field_choices=applied,
        snapshot=snapshot,
        reason=reason,
        actor_id=actor_id,
    )
    session.add(merge)
    await session.flush()
    await after_merge(
        session,
        survivor_id=survivor_id,
        merged_lead_ids=merged_lead_ids,
        folded_lead_ids=[uuid.UUID(lead_id) for lead_id in folded],
        merge_id=merge.id,
        now=now,
    )
    for lead in await session.scalars(select(Lead).where(Lead.contact_id == survivor_id)):
        add_event(
            session,
            lead,
            EventType.merged,
            occurred_at=now,
            actor_type="user" if actor_id else "system",
            actor_id=actor_id,
            data={
                "merge_id": str(merge.id),
                "merged_contact_id": str(merged_id),
                "reason": reason,
                "folded_lead_ids": folded,
            },
        )
    await session.flush()
    return merge


def _merge_fields(survivor: Contact, merged: Contact, choices: dict[str, str]) -> dict[str, str]:
    """Apply the person's choices; where they said nothing, a blank on the survivor takes the other value."""
    applied: dict[str, str] = {}
    for field in MERGEABLE_FIELDS:
        side = choices.get(field)
        if side is None:
            side = "merged" if getattr(survivor, field) in (None, "") and getattr(merged, field) else "survivor"
        if side == "merged":
            setattr(survivor, field, getattr(merged, field))
        applied[field] = side
    return applied


async def _fold_duplicate_open_leads(
    session: AsyncSession, survivor_id: uuid.UUID, merged_id: uuid.UUID, now: datetime
) -> list[str]:
    """Two open leads for one property cannot both stay open: the merged side closes as a duplicate."""
    survivor_open = {
        row.property_id
        for row in await session.execute(
            select(Lead.property_id).where(Lead.contact_id == survivor_id, Lead.status.notin_(CLOSED))
        )
    }
    folded = []
    for lead in await session.scalars(
        select(Lead).where(Lead.contact_id == merged_id, Lead.status.notin_(CLOSED)).with_for_update(key_share=True)
    ):
        if lead.property_id in survivor_open:
            lead.status = LeadStatus.lost
            lead.lost_reason = LostReason.duplicate
            lead.lost_reason_text = "merged into another lead of the same renter"
            lead.temperature = Temperature.cold
            lead.closed_at = now
            lead.next_action_type = None
            lead.next_action_due_at = None
            folded.append(str(lead.id))
    await session.flush()
    return folded


async def _events_follow_their_leads(session: AsyncSession, lead_ids: list[uuid.UUID]) -> None:
    if lead_ids:
        await session.execute(
            text(
                "UPDATE lead_events AS e SET contact_id = l.contact_id FROM leads AS l "
                "WHERE e.lead_id = l.id AND l.id = ANY(:ids) AND e.contact_id IS DISTINCT FROM l.contact_id"
            ),
            {"ids": lead_ids},
        )


async def get_merge(
    session: AsyncSession,
    org_id: uuid.UUID,
    merge_id: uuid.UUID,
    lock: bool = False,
    scope: ColumnElement[bool] | None = None,
) -> Merge:
    """`scope` (the caller's lead scope): a merge is seen by whoever sees a lead of either person."""
    query = select(Merge).where(Merge.id == merge_id, Merge.org_id == org_id)
    if scope is not None:
        people = contact_ids_in(org_id, scope)
        query = query.where(Merge.survivor_id.in_(people) | Merge.merged_id.in_(people))
    if lock:
        query = query.with_for_update()
    merge = await session.scalar(query)
    if merge is None:
        raise NotFound("Merge not found.")
    return merge


async def undo_merge(
    session: AsyncSession, org_id: uuid.UUID, merge_id: uuid.UUID, actor_id: uuid.UUID | None
) -> Merge:
    merge = await get_merge(session, org_id, merge_id, lock=True)
    if merge.undone_at is not None:
        raise Conflict("This merge was already undone.")
    later = await session.scalar(
        select(Merge.id).where(
            Merge.org_id == org_id,
            Merge.undone_at.is_(None),
            Merge.created_at > merge.created_at,
            Merge.merged_id.in_([merge.survivor_id, merge.merged_id])
            | Merge.survivor_id.in_([merge.survivor_id, merge.merged_id]),
        )
    )
    if later is not None:
        raise Conflict("A later merge involves these contacts; undo it first.", blocking_merge_id=str(later))
    await _lock_contacts(session, org_id, [merge.survivor_id, merge.merged_id])
    await session.execute(
        text("DELETE FROM lead_events WHERE org_id = :org AND type = 'merged' AND data ->> 'merge_id' = :merge"),
        {"org": org_id, "merge": str(merge.id)},
    )
    snapshot: dict[str, Any] = merge.snapshot
    await restore_rows(session, Contact.__table__, snapshot.get("contacts", []))
    await restore_rows(session, ContactIdentity.__table__, snapshot.get("contact_identities", []))
    await restore_rows(session, Lead.__table__, snapshot.get("leads", []))
    await _events_follow_their_leads(session, [uuid.UUID(row["id"]) for row in snapshot.get("leads", [])])
    merge.undone_at = clock.now()
    merge.undone_by_id = actor_id
    await session.execute(
        update(ReviewItem)
        .where(ReviewItem.org_id == org_id, ReviewItem.merge_id == merge.id)
        .values(status=ReviewStatus.open, resolution=None, resolved_at=None, resolved_by_id=None, merge_id=None)
    )
    await session.flush()
    session.expunge_all()  # restored rows were written in SQL: drop stale ORM copies
    return await get_merge(session, org_id, merge_id)
