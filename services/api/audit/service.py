"""The audit trail: every successful write through the API records who did which operation on what.

Written by the request's unit of work just before its commit, so a write that rolled back leaves no entry
and a committed one always has one. Values are never copied (they may be a renter's phone or email): the
entry keeps the operation (method + route template), the ids in the path and the names of the body's fields.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import structlog
from fastapi import Request
from sqlalchemy import exists, func, literal, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.pagination import decode_cursor, encode_cursor
from shared import clock
from shared.models import AuditEntry

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FIELDS_BODY_MAX = 64 * 1024


def record_write(session: AsyncSession, request: Request) -> None:
    """Add the entry for this request if it was a write by an API key (intake and service calls are not)."""
    principal = getattr(request.state, "principal", None)
    if principal is None or request.method not in WRITE_METHODS:
        return
    route = request.scope.get("route")
    session.add(
        AuditEntry(
            id=uuid.uuid4(),
            org_id=principal.org_id,
            occurred_at=clock.now(),
            actor_key_id=principal.key_id,
            actor_user_id=principal.user_id,
            actor_role=str(principal.role),
            method=request.method,
            route=str(getattr(route, "path", request.url.path))[:200],
            target={name: str(value) for name, value in request.path_params.items()},
            fields=_body_fields(request),
            status=int(getattr(route, "status_code", None) or 200),
            request_id=structlog.contextvars.get_contextvars().get("request_id"),
        )
    )


def _body_fields(request: Request) -> list[str]:
    body = getattr(request, "_body", None)  # already read by FastAPI for the body parameter
    if not isinstance(body, bytes | bytearray) or not body or len(body) > _FIELDS_BODY_MAX:
        return []
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    return sorted(str(key)[:64] for key in parsed)[:50] if isinstance(parsed, dict) else []


async def list_entries(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    since: datetime | None,
    until: datetime | None,
    actor_user_id: uuid.UUID | None,
    target_id: uuid.UUID | None,
) -> tuple[list[AuditEntry], str | None]:
    query = select(AuditEntry).where(AuditEntry.org_id == org_id)
    if since is not None:
        query = query.where(AuditEntry.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEntry.occurred_at < until)
    if actor_user_id is not None:
        query = query.where(AuditEntry.actor_user_id == actor_user_id)
    if target_id is not None:
        query = query.where(
            exists(
                select(literal(1))
                .select_from(func.jsonb_each_text(AuditEntry.target).table_valued("value"))
                .where(literal_column("value") == str(target_id))
            )
        )
    if cursor:
        moment, raw_id = decode_cursor(cursor)
        query = query.where(
            tuple_(AuditEntry.occurred_at, AuditEntry.id) < (datetime.fromisoformat(moment), uuid.UUID(raw_id))
        )
    query = query.order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.occurred_at.isoformat(), str(last.id)])
    return rows[:limit], next_cursor


def entry_out(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "occurred_at": row.occurred_at,
        "actor": {"key_id": row.actor_key_id, "user_id": row.actor_user_id, "role": row.actor_role},
        "operation": f"{row.method} {row.route}",
        "target": row.target,
        "fields": row.fields,
        "status": row.status,
        "request_id": row.request_id,
    }
