"""Reading and resolving the review queue."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import any_, func, select, true, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api.merges.service import merge_contacts
from services.api.owners.scope import about_lead_in_scope
from services.api.pagination import decode_cursor, encode_cursor
from shared import clock
from shared.enums import ReviewStatus
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import ContactPairDecision, ReviewItem
from shared.repositories.identities import ordered_pair

# items a person resolves by answering the renter (automation resumes); the rest are duplicates to decide
PERSON_KINDS = frozenset({"sensitive_conversation", "automation_review"})


async def list_items(
    session: AsyncSession,
    org_id: uuid.UUID,
    statuses: list[str],
    kind: str | None,
    contact_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
    scope: ColumnElement[bool] | None = None,
) -> tuple[list[ReviewItem], str | None]:
    """`scope`: the caller's lead scope (services.api.owners.scope); an item follows its lead, else its contact."""
    query = select(ReviewItem).where(
        ReviewItem.org_id == org_id, ReviewItem.status.in_(statuses), _in_scope(org_id, scope)
    )
    if kind:
        query = query.where(ReviewItem.kind == kind)
    if contact_id:
        query = query.where(
            (ReviewItem.contact_id == contact_id) | (contact_id == any_(ReviewItem.candidate_contact_ids))
        )
    if cursor:
        created, raw_id = decode_cursor(cursor)
        query = query.where(
            tuple_(ReviewItem.created_at, ReviewItem.id) < (datetime.fromisoformat(created), uuid.UUID(raw_id))
        )
    rows = list(
        (
            await session.scalars(query.order_by(ReviewItem.created_at.desc(), ReviewItem.id.desc()).limit(limit + 1))
        ).all()
    )
    next_cursor = (
        encode_cursor([rows[limit - 1].created_at.isoformat(), rows[limit - 1].id]) if len(rows) > limit else None
    )
    return rows[:limit], next_cursor


def _in_scope(org_id: uuid.UUID, scope: ColumnElement[bool] | None) -> ColumnElement[bool]:
    condition = about_lead_in_scope(org_id, scope, ReviewItem.lead_id, ReviewItem.contact_id)
    return true() if condition is None else condition


async def counts(session: AsyncSession, org_id: uuid.UUID, scope: ColumnElement[bool] | None = None) -> dict[str, int]:
    query = select(ReviewItem.status, func.count()).where(ReviewItem.org_id == org_id, _in_scope(org_id, scope))
    rows = await session.execute(query.group_by(ReviewItem.status))
    result = {status.value: 0 for status in ReviewStatus}
    result.update({status: int(count) for status, count in rows})
    return result


async def get_item(
    session: AsyncSession,
    org_id: uuid.UUID,
    item_id: uuid.UUID,
    lock: bool = False,
    scope: ColumnElement[bool] | None = None,
) -> ReviewItem:
    query = select(ReviewItem).where(ReviewItem.id == item_id, ReviewItem.org_id == org_id, _in_scope(org_id, scope))
    item = await session.scalar(query.with_for_update() if lock else query)
    if item is None:
        raise NotFound("Review item not found.")
    return item


async def resolve(
    session: AsyncSession,
    org_id: uuid.UUID,
    item_id: uuid.UUID,
    *,
    action: str,
    survivor_id: uuid.UUID | None,
    field_choices: dict[str, str],
    note: str | None,
    actor_id: uuid.UUID | None,
    scope: ColumnElement[bool] | None = None,
) -> ReviewItem:
    item = await get_item(session, org_id, item_id, lock=True, scope=scope)
    if item.status != ReviewStatus.open:
        raise Conflict(f"This review item is already {item.status}.")
    if item.kind in PERSON_KINDS or action == "resolve":
        return await _resolve_sensitive(session, item, action, note, actor_id)
    people = [cid for cid in dict.fromkeys([item.contact_id, *item.candidate_contact_ids]) if cid is not None]
    if len(people) < 2:
        raise Conflict("This review item names fewer than two contacts.")
    now = clock.now()
    if action == "keep_apart":
        for other in people[1:]:
            low, high = ordered_pair(people[0], other)
            await session.execute(
                insert(ContactPairDecision)
                .values(
                    id=uuid.uuid4(), org_id=org_id, contact_low_id=low, contact_high_id=high, decided_by_id=actor_id
                )
                .on_conflict_do_nothing(index_elements=["org_id", "contact_low_id", "contact_high_id"])
            )
        item.status = ReviewStatus.kept_apart
    else:
        survivor = survivor_id or people[0]
        if survivor not in people:
            raise ValidationFailed(
                "survivor_id must be one of the item's contacts.",
                errors=[{"field": "body.survivor_id", "message": "not in this item"}],
            )
        merge_id = None
        for other in people:
            if other != survivor:
                merge = await merge_contacts(
                    session,
                    org_id,
                    survivor,
                    other,
                    field_choices=field_choices,
                    reason=note or "review item",
                    actor_id=actor_id,
                )
                merge_id = merge.id
        item.status = ReviewStatus.merged
        item.merge_id = merge_id
    item.resolution = action
    item.resolution_note = note
    item.resolved_by_id = actor_id
    item.resolved_at = now
    await session.flush()
    return item


async def _resolve_sensitive(
    session: AsyncSession, item: ReviewItem, action: str, note: str | None, actor_id: uuid.UUID | None
) -> ReviewItem:
    """A person took the conversation over (sensitive, or handed over by a rule): the item is resolved and the
    lead's automation resumes."""
    from services.api.automation.review import resume
    from services.api.messaging.rules_bridge import resolve_sensitive

    if item.kind not in PERSON_KINDS or action != "resolve":
        raise Conflict(
            "A sensitive conversation or an automation review is resolved with action `resolve`; "
            "a duplicate with merge/keep_apart."
        )
    item.status = ReviewStatus.resolved
    item.resolution = action
    item.resolution_note = note
    item.resolved_by_id = actor_id
    item.resolved_at = clock.now()
    if item.kind == "sensitive_conversation":
        await resolve_sensitive(session, item)
    else:
        await resume(session, item, item.resolved_at)
    await session.flush()
    return item
