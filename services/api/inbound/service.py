"""Ops views of the inbox and replay. The worker owns processing; this only reads and re-queues."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from sqlalchemy import select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import ColumnElement

from services.api.owners.scope import about_lead_in_scope
from services.api.pagination import decode_cursor, encode_cursor
from shared.enums import InboundStatus
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import InboundMessage
from shared.queue import enqueue_after_commit


def _in_scope(org_id: uuid.UUID, scope: ColumnElement[bool] | None) -> ColumnElement[bool]:
    """A delivery follows the lead it became (services.api.owners.scope); one that became none is ops' alone."""
    condition = about_lead_in_scope(org_id, scope, InboundMessage.lead_id)
    return true() if condition is None else condition


async def get_inbound(
    session: AsyncSession, org_id: uuid.UUID, inbound_id: uuid.UUID, scope: ColumnElement[bool] | None = None
) -> InboundMessage:
    row = await session.scalar(
        select(InboundMessage)
        .options(defer(InboundMessage.body))
        .where(InboundMessage.id == inbound_id, InboundMessage.org_id == org_id, _in_scope(org_id, scope))
    )
    if row is None:
        raise NotFound("Inbound message not found.")
    return row


async def list_inbound(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    status: InboundStatus | None,
    kind: str | None,
    source: str | None,
    received_from: datetime | None,
    received_to: datetime | None,
    scope: ColumnElement[bool] | None = None,
) -> tuple[list[InboundMessage], str | None]:
    """Newest first on (received_at, id), the order of ix_inbound_messages_org_id_received_at."""
    query = (
        select(InboundMessage)
        .options(defer(InboundMessage.body), defer(InboundMessage.signal), defer(InboundMessage.match))
        .where(InboundMessage.org_id == org_id, _in_scope(org_id, scope))
    )
    if status is not None:
        query = query.where(InboundMessage.status == status.value)
    if kind is not None:
        query = query.where(InboundMessage.kind == kind)
    if source is not None:
        query = query.where(InboundMessage.source == source)
    if received_from is not None:
        query = query.where(InboundMessage.received_at >= received_from)
    if received_to is not None:
        query = query.where(InboundMessage.received_at < received_to)
    if cursor:
        values = decode_cursor(cursor)
        try:
            at, raw_id = datetime.fromisoformat(values[0]), uuid.UUID(values[1])
        except (IndexError, TypeError, ValueError) as error:
            raise ValidationFailed(
                "The cursor is not valid.", errors=[{"field": "query.cursor", "message": "malformed cursor"}]
            ) from error
        query = query.where(tuple_(InboundMessage.received_at, InboundMessage.id) < (at, raw_id))
    query = query.order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.received_at.isoformat(), str(last.id)])
    return rows[:limit], next_cursor


async def replay(session: AsyncSession, org_id: uuid.UUID, inbound_id: uuid.UUID) -> tuple[InboundMessage, str]:
    """Back to `received` and queued again under a fresh job id (arq would drop a reused one)."""
    row = await get_inbound(session, org_id, inbound_id)
    if row.status == InboundStatus.processed:
        raise Conflict("Already processed: the lead has it; a replay would change nothing.")
    row.status, row.reason, row.processed_at = InboundStatus.received.value, None, None
    await session.flush()
    job_id = f"inbound:{row.id}:replay:{time.time_ns() // 1_000_000}"
    enqueue_after_commit(session, "process_inbound", str(row.id), job_id=job_id)
    return row, job_id
