"""The review queue: possible duplicates a person decides on, never a silent guess."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.webhooks.catalog import REVIEW_ITEM_CREATED
from services.api.webhooks.outbox import event_stream_row, record_event
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
        data=review_item_created_data(
            item.id, item.kind, item.status, item.contact_id, item.lead_id, item.candidate_contact_ids, item.reasons
        ),
    )


def review_item_created_data(
    item_id: uuid.UUID,
    kind: str,
    status: str,
    contact_id: uuid.UUID | None,
    lead_id: uuid.UUID | None,
    candidate_contact_ids: list[uuid.UUID],
    reasons: list[Any],
) -> dict[str, Any]:
    return {
        "review_item": {
            "id": str(item_id),
            "kind": kind,
            "status": status,
            "contact_id": str(contact_id) if contact_id else None,
            "lead_id": str(lead_id) if lead_id else None,
            "candidate_contact_ids": [str(cid) for cid in candidate_contact_ids],
            "reasons": reasons,
        }
    }


@dataclass
class DuplicateQuestion:
    contact_id: uuid.UUID
    lead_id: uuid.UUID
    candidate_ids: list[uuid.UUID]
    reasons: list[Any]


@dataclass
class DuplicateReviews:
    """What `duplicate_review_rows` decided: per question the review item it went to (None: kept apart),
    and the new items and their `review_item.created` stream rows as values, for the caller to write."""

    answers: list[uuid.UUID | None]
    items: list[dict[str, Any]]
    stream: list[dict[str, Any]]


async def duplicate_review_rows(
    session: AsyncSession,
    org_id: uuid.UUID,
    questions: list[DuplicateQuestion],
    now: datetime,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> DuplicateReviews:
    """`open_duplicate_review` for many questions at once (CSV import): the same rules, two reads in all.

    The same question again adds its reasons to the open item (an ORM update of a stored item, flushed with
    the transaction); new items come back as plain rows for the caller to write in one statement, each with
    the stream row `record_review_item_created` would have added (the reasons it was opened with).
    """
    decided = DuplicateReviews([], [], [])
    if not questions:
        return decided
    people = list({cid for q in questions for cid in (q.contact_id, *q.candidate_ids)})
    pairs = await session.execute(
        select(ContactPairDecision.contact_low_id, ContactPairDecision.contact_high_id).where(
            ContactPairDecision.org_id == org_id,
            ContactPairDecision.contact_low_id.in_(people),
            ContactPairDecision.contact_high_id.in_(people),
        )
    )
    apart = {frozenset(pair) for pair in pairs}
    # per contact: (item id, its candidates, the stored item or the new row)
    open_items: dict[uuid.UUID, list[tuple[uuid.UUID, set[uuid.UUID], ReviewItem | dict[str, Any]]]] = {}
    for item in await session.scalars(
        select(ReviewItem).where(
            ReviewItem.org_id == org_id,
            ReviewItem.status == ReviewStatus.open,
            ReviewItem.contact_id.in_({q.contact_id for q in questions}),
        )
    ):
        if item.contact_id is not None:
            open_items.setdefault(item.contact_id, []).append((item.id, set(item.candidate_contact_ids), item))
    for question in questions:
        others = [cid for cid in dict.fromkeys(question.candidate_ids) if cid != question.contact_id]
        others = others or list(dict.fromkeys(question.candidate_ids))
        remaining = [
            cid for cid in others if cid == question.contact_id or frozenset((question.contact_id, cid)) not in apart
        ]
        if not remaining:
            decided.answers.append(None)
            continue
        existing = next(
            (entry for entry in open_items.get(question.contact_id, []) if set(remaining) <= entry[1]), None
        )
        if existing is not None:
            item_id, _, held = existing
            if isinstance(held, ReviewItem):
                held.reasons = [*held.reasons, *[r for r in question.reasons if r not in held.reasons]]
            else:
                held["reasons"] = [*held["reasons"], *[r for r in question.reasons if r not in held["reasons"]]]
            decided.answers.append(item_id)
            continue
        item_id = new_id()
        row: dict[str, Any] = {
            "id": item_id,
            "org_id": org_id,
            "kind": "possible_duplicate",
            "status": ReviewStatus.open,
            "contact_id": question.contact_id,
            "lead_id": question.lead_id,
            "inbound_id": None,
            "candidate_contact_ids": remaining,
            "reasons": list(question.reasons),
            "created_at": now,
            "updated_at": now,
        }
        decided.items.append(row)
        data = review_item_created_data(
            item_id, row["kind"], row["status"], question.contact_id, question.lead_id, remaining, list(row["reasons"])
        )
        decided.stream.append(
            event_stream_row(session, org_id, REVIEW_ITEM_CREATED, lead_id=question.lead_id, occurred_at=now, data=data)
        )
        open_items.setdefault(question.contact_id, []).append((item_id, set(remaining), row))
        decided.answers.append(item_id)
    return decided
