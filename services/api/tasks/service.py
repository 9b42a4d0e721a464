"""Tasks on leads: created by people or by rules, completed with a timeline entry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api.auth.service import Principal
from services.api.leads.deps import load_lead
from services.api.leads.events import add_event
from services.api.leads.refs import ensure_user
from services.api.owners.scope import lead_in_scope
from services.api.pagination import decode_cursor, encode_cursor
from services.api.patching import apply_patch
from services.api.tasks.schemas import TaskCreate, TaskUpdate
from shared import clock
from shared.enums import EventType, TaskStatus
from shared.errors import NotFound, ValidationFailed
from shared.models import Lead, Task


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def create_task(session: AsyncSession, principal: Principal, lead: Lead, body: TaskCreate) -> Task:
    await ensure_user(session, principal.org_id, body.owner_id, "body.owner_id")
    task = Task(
        id=uuid.uuid4(),
        org_id=lead.org_id,
        lead_id=lead.id,
        type=body.type,
        title=body.title,
        description=body.description,
        status=TaskStatus.open,
        due_at=body.due_at,
        owner_id=body.owner_id or lead.owner_id or principal.user_id,
        created_by_id=principal.user_id,
    )
    session.add(task)
    add_event(
        session,
        lead,
        EventType.task_created,
        actor_type="user",
        actor_id=principal.user_id,
        data={"task_id": str(task.id), "title": task.title, "type": task.type, "due_at": _iso(task.due_at)},
    )
    await session.flush()
    return task


async def lead_tasks(session: AsyncSession, lead: Lead) -> list[Task]:
    query = (
        select(Task)
        .where(Task.lead_id == lead.id, Task.org_id == lead.org_id)
        .order_by(Task.due_at.asc().nulls_last(), Task.created_at, Task.id)
        .limit(1000)
    )
    return list((await session.scalars(query)).all())


async def get_task(session: AsyncSession, org_id: uuid.UUID, task_id: uuid.UUID, lock: bool = False) -> Task:
    query = select(Task).where(Task.id == task_id, Task.org_id == org_id)
    if lock:
        query = query.with_for_update()
    task = await session.scalar(query)
    if task is None:
        raise NotFound("Task not found.")
    return task


async def update_task(session: AsyncSession, principal: Principal, task_id: uuid.UUID, body: TaskUpdate) -> Task:
    task = await get_task(session, principal.org_id, task_id, lock=True)
    if not await lead_in_scope(session, principal, task.lead_id):
        raise NotFound("Task not found.")
    changes = body.model_dump(exclude_unset=True)
    if "owner_id" in changes:
        await ensure_user(session, principal.org_id, changes["owner_id"], "body.owner_id")
    previous = TaskStatus(task.status)
    apply_patch(task, changes, not_nullable=("title", "type", "status"))
    task.updated_at = clock.now()
    status = TaskStatus(task.status)
    if status != previous:
        task.completed_at = clock.now() if status == TaskStatus.done else None
        if status == TaskStatus.done:
            lead = await load_lead(session, principal.org_id, task.lead_id)
            add_event(
                session,
                lead,
                EventType.task_completed,
                occurred_at=task.completed_at,
                actor_type="user",
                actor_id=principal.user_id,
                data={"task_id": str(task.id), "title": task.title, "type": task.type},
            )
    await session.flush()
    return task


@dataclass
class TaskFilters:
    owner_id: uuid.UUID | None = None
    status: TaskStatus | None = None
    due_before: datetime | None = None
    lead_id: uuid.UUID | None = None


def _after(query: Select[Task], cursor: str) -> Select[Task]:
    """Keyset on (due_at ASC NULLS LAST, id)."""
    try:
        raw_due, raw_id = decode_cursor(cursor)
        task_id = uuid.UUID(raw_id)
        due = datetime.fromisoformat(raw_due) if raw_due is not None else None
    except (ValueError, TypeError) as error:
        raise ValidationFailed(
            "The cursor is not valid.", errors=[{"field": "query.cursor", "message": "malformed cursor"}]
        ) from error
    if due is None:
        return query.where(Task.due_at.is_(None), Task.id > task_id)
    return query.where(or_(Task.due_at > due, and_(Task.due_at == due, Task.id > task_id), Task.due_at.is_(None)))


async def list_tasks(
    session: AsyncSession,
    org_id: uuid.UUID,
    filters: TaskFilters,
    limit: int,
    cursor: str | None,
    *,
    scope: ColumnElement[bool] | None = None,
) -> tuple[list[Task], str | None]:
    query = select(Task).where(Task.org_id == org_id)
    if scope is not None:  # owners' scope: tasks of the leads the caller may see
        query = query.where(Task.lead_id.in_(select(Lead.id).where(Lead.org_id == org_id, scope)))
    if filters.owner_id:
        query = query.where(Task.owner_id == filters.owner_id)
    if filters.status:
        query = query.where(Task.status == filters.status)
    if filters.due_before:
        query = query.where(Task.due_at < filters.due_before)
    if filters.lead_id:
        query = query.where(Task.lead_id == filters.lead_id)
    if cursor:
        query = _after(query, cursor)
    query = query.order_by(Task.due_at.asc().nulls_last(), Task.id.asc()).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([_iso(last.due_at), str(last.id)])
    return rows[:limit], next_cursor
