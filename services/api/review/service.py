"""The review queue: possible duplicates a person decides on, never a silent guess."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.webhooks.catalog import REVIEW_ITEM_CREATED
from services.api.webhooks.outbox import record_event
from shared import clock
from shared.enums import ReviewStatus
from shared.models import ReviewItem
from shared.repositories.identities import kept_apart


async def open_duplicate_review(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    contact_id: uuid.UUID,
    lead_id: uuid.UUID,
    inbound_id: uuid.UUID | None,
    candidate_ids: list[uuid.UUID],
    reasons: list[Any],
) -> uuid.UUID | None:
    """Open one review item per unresolved question; the same question again adds to the open item."""
    others = [cid for cid in dict.fromkeys(candidate_ids) if cid != contact_id]
    if not others:
        others = [cid for cid in dict.fromkeys(candidate_ids)]
    remaining = [cid for cid in others if cid == contact_id or not await kept_apart(session, org_id, contact_id, cid)]
    if not remaining:
        return None
    existing = await session.scalar(
        select(ReviewItem).where(
            ReviewItem.org_id == org_id,
            ReviewItem.status == ReviewStatus.open,
            ReviewItem.contact_id == contact_id,
            ReviewItem.candidate_contact_ids.contains(remaining),
        )
    )
    if existing is not None:
        existing.reasons = [*existing.reasons, *[reason for reason in reasons if reason not in existing.reasons]]
        return existing.id
    item = ReviewItem(
        id=uuid.uuid4(),
        org_id=org_id,
        kind="possible_duplicate",
        status=ReviewStatus.open,
        contact_id=contact_id,
        lead_id=lead_id,
        inbound_id=inbound_id,
        candidate_contact_ids=remaining,
        reasons=list(reasons),
    )
    session.add(item)
    record_review_item_created(session, item)
    await session.flush()
    return item.id


def record_review_item_created(session: AsyncSession, item: ReviewItem) -> None:
    """`review_item.created` on the event stream; every writer of a new review item calls this."""
    record_event(
        session,
        item.org_id,
        REVIEW_ITEM_CREATED,
        lead_id=item.lead_id,
        occurred_at=clock.now(),
        data={
            "review_item": {
                "id": str(item.id),
                "kind": item.kind,
                "status": item.status,
                "contact_id": str(item.contact_id) if item.contact_id else None,
                "lead_id": str(item.lead_id) if item.lead_id else None,
                "candidate_contact_ids": [str(cid) for cid in item.candidate_contact_ids],
                "reasons": item.reasons,
            }
        },
    )
