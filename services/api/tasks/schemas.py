from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.enums import TaskStatus, TaskType


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskCreate(_Body):
    title: str = Field(min_length=1, max_length=300)
    type: TaskType = TaskType.follow_up
    due_at: datetime | None = None
    owner_id: uuid.UUID | None = Field(None, description="defaults to the lead's owner, else the caller")
    description: str | None = Field(None, max_length=10_000)


class TaskUpdate(_Body):
    title: str | None = Field(None, min_length=1, max_length=300)
    type: TaskType | None = None
    status: TaskStatus | None = None
    due_at: datetime | None = None
    owner_id: uuid.UUID | None = None
    description: str | None = Field(None, max_length=10_000)


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    lead_id: uuid.UUID
    type: str
    title: str
    description: str | None
    status: TaskStatus
    due_at: datetime | None
    owner_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    completed_at: datetime | None
    rule: str | None = Field(description="set when a next-action rule created the task")
    created_at: datetime
    updated_at: datetime


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None
