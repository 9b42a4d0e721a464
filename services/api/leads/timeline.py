"""Reading a lead's timeline, newest first, on the (lead_id, occurred_at DESC, id DESC) index.

One statement when the caller sees the whole organization: the events themselves. Whether the lead exists
(404) is asked only when there are none; an agent's scope is checked first, as everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BindParameter, Select, select, tuple_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.leads.schemas import TimelineEvent
from services.api.owners.scope import ensure_in_scope
from services.api.pagination import encode_cursor, time_keyset
from shared.enums import Role
from shared.errors import NotFound
from shared.models import Lead, LeadEvent

# the columns the wire shows, in its order (no ORM objects: rows go straight to JSON)
EVENT_COLUMNS = [LeadEvent.__table__.c[name] for name in TimelineEvent.model_fields]


DEFAULT_LIMIT = 100  # the route's default page size


def events_query(
    org_id: Any, lead_id: Any, types: Sequence[str] | BindParameter[Any], after: tuple[Any, Any] | None, limit: int
) -> Select[Any]:
    """A page of the lead's events, newest first, one more than `limit` (whether a next page exists). `types` and
    `after` may be parameters (services/api/leads/fast.py compiles the statement once per shape)."""
    query = select(*EVENT_COLUMNS).where(LeadEvent.lead_id == lead_id, LeadEvent.org_id == org_id)
    if isinstance(types, BindParameter) or types:
        query = query.where(LeadEvent.type.in_(types))
    if after is not None:
        query = query.where(tuple_(LeadEvent.occurred_at, LeadEvent.id) < tuple_(*after))
    return query.order_by(LeadEvent.occurred_at.desc(), LeadEvent.id.desc()).limit(limit + 1)


def cursor_after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (occurred_at, id) a timeline cursor continues after; a 422 naming `query.cursor` when it is not one."""
    return time_keyset(cursor)[1] if cursor else None


def lead_exists_query(org_id: Any, lead_id: Any) -> Select[Any]:
    return select(Lead.id).where(Lead.id == lead_id, Lead.org_id == org_id)


def page_of(rows: Sequence[Any], limit: int) -> tuple[Sequence[Any], str | None]:
    """The page (at most `limit` rows of the limit + 1 read) and the cursor of the next one, if any."""
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last["occurred_at"].astimezone(UTC).isoformat(), str(last["id"])])
    return rows[:limit], next_cursor


async def list_events(
    session: AsyncSession, principal: Principal, lead_id: uuid.UUID, types: list[str], limit: int, cursor: str | None
) -> tuple[Sequence[RowMapping], str | None]:
    if principal.role not in (Role.admin, Role.manager):
        await ensure_in_scope(session, principal, lead_id)  # outside the scope is a 404
    after = cursor_after(cursor)
    query = events_query(principal.org_id, lead_id, types, after, limit)
    rows = (await session.execute(query)).mappings().all()
    if not rows and await session.scalar(lead_exists_query(principal.org_id, lead_id)) is None:
        raise NotFound("Lead not found.")
    return page_of(rows, limit)
