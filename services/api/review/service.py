"""The review queue: possible duplicates a person decides on, never a silent guess."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.webhooks.catalog import REVIEW_ITEM_CREATED
from services.api.webhooks.outbox import record_event
from shared import clock
from shared.enums import ReviewStatus
from shared.models import ContactPairDecision, ReviewItem
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


@dataclass
class DuplicateQuestion:
    contact_id: uuid.UUID
    lead_id: uuid.UUID
    candidate_ids: list[uuid.UUID]
    reasons: list[Any]


async def open_duplicate_reviews(
    session: AsyncSession, org_id: uuid.UUID, questions: list[DuplicateQuestion]
) -> list[uuid.UUID | None]:
    """`open_duplicate_review` for many questions at once (CSV import): the same rules, two reads in all."""
    if not questions:
        return []
    people = list({cid for q in questions for cid in (q.contact_id, *q.candidate_ids)})
    pairs = await session.execute(
        select(ContactPairDecision.contact_low_id, ContactPairDecision.contact_high_id).where(
            ContactPairDecision.org_id == org_id,
            ContactPairDecision.contact_low_id.in_(people),
            ContactPairDecision.contact_high_id.in_(people),
        )
    )
    apart = {frozenset(pair) for pair in pairs}
    open_items: dict[uuid.UUID, list[ReviewItem]] = {}
    for item in await session.scalars(
        select(ReviewItem).where(
            ReviewItem.org_id == org_id,
            ReviewItem.status == ReviewStatus.open,
            ReviewItem.contact_id.in_({q.contact_id for q in questions}),
        )
    ):
        if item.contact_id is not None:
            open_items.setdefault(item.contact_id, []).append(item)
    answers: list[uuid.UUID | None] = []
    for question in questions:
        others = [cid for cid in dict.fromkeys(question.candidate_ids) if cid != question.contact_id]
        others = others or list(dict.fromkeys(question.candidate_ids))
        remaining = [
            cid for cid in others if cid == question.contact_id or frozenset((question.contact_id, cid)) not in apart
        ]
        if not remaining:
            answers.append(None)
            continue
        existing = next(
            (i for i in open_items.get(question.contact_id, []) if set(remaining) <= set(i.candidate_contact_ids)),
            None,
        )
        if existing is not None:
            existing.reasons = [*existing.reasons, *[r for r in question.reasons if r not in existing.reasons]]
            answers.append(existing.id)
            continue
        item = ReviewItem(
            id=uuid.uuid4(),
            org_id=org_id,
            kind="possible_duplicate",
            status=ReviewStatus.open,
            contact_id=question.contact_id,
            lead_id=question.lead_id,
            inbound_id=None,
            candidate_contact_ids=remaining,
            reasons=list(question.reasons),
        )
        session.add(item)
        record_review_item_created(session, item)
        open_items.setdefault(question.contact_id, []).append(item)
        answers.append(item.id)
    await session.flush()
    return answers
