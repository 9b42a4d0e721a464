"""Tasks: per lead, and across the organization (my tasks, overdue)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from services.api.deps import PrincipalDep, SessionDep
from services.api.leads.deps import LeadDep
from services.api.owners.scope import lead_scope
from services.api.tasks import service
from services.api.tasks.schemas import TaskCreate, TaskOut, TaskPage, TaskUpdate
from services.api.types import IsoDateTime, uuid_or
from shared.enums import TaskStatus
from shared.errors import ValidationFailed

router = APIRouter(tags=["tasks"])


@router.post("/v1/leads/{lead_id}/tasks", response_model=TaskOut, status_code=status.HTTP_201_CREATED)
async def create_task(lead: LeadDep, body: TaskCreate, principal: PrincipalDep, session: SessionDep) -> TaskOut:
    return TaskOut.model_validate(await service.create_task(session, principal, lead, body))


@router.get("/v1/leads/{lead_id}/tasks", response_model=list[TaskOut])
async def lead_tasks(lead: LeadDep, session: SessionDep) -> list[TaskOut]:
    return [TaskOut.model_validate(task) for task in await service.lead_tasks(session, lead)]


@router.patch("/v1/tasks/{task_id}", response_model=TaskOut)
async def update_task(task_id: uuid.UUID, body: TaskUpdate, principal: PrincipalDep, session: SessionDep) -> TaskOut:
    """`status: done` stamps `completed_at` and adds `task_completed` to the lead's timeline."""
    return TaskOut.model_validate(await service.update_task(session, principal, task_id, body))


@router.get("/v1/tasks", response_model=TaskPage)
async def list_tasks(
    principal: PrincipalDep,
    session: SessionDep,
    owner_id: Annotated[
        str | None, Query(description="a user id, or `me` for the key's user", pattern=uuid_or("me"))
    ] = None,
    task_status: Annotated[TaskStatus | None, Query(alias="status")] = None,
    due_before: Annotated[IsoDateTime | None, Query(description="overdue: pass now")] = None,
    lead_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> TaskPage:
    """Soonest due first (no due date last)."""
    owner: uuid.UUID | None = None
    if owner_id == "me":
        owner = principal.user_id
        if owner is None:
            raise _bad_owner("this API key has no user")
    elif owner_id is not None:
        try:
            owner = uuid.UUID(owner_id)
        except ValueError as error:
            raise _bad_owner("a user id or `me`") from error
    filters = service.TaskFilters(owner_id=owner, status=task_status, due_before=due_before, lead_id=lead_id)
    scope = await lead_scope(session, principal)
    rows, next_cursor = await service.list_tasks(session, principal.org_id, filters, limit, cursor, scope=scope)
    return TaskPage(items=[TaskOut.model_validate(row) for row in rows], next_cursor=next_cursor)


def _bad_owner(message: str) -> ValidationFailed:
    return ValidationFailed("owner_id is not valid.", errors=[{"field": "query.owner_id", "message": message}])
