from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.enums import LeadStatus


class StatusLabelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=100, description="the organization's own name")
    canonical_status: LeadStatus = Field(description="the status metrics count it as")


class StatusLabelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    label: str
    canonical_status: LeadStatus
    created_at: datetime


class ActionPlanOut(BaseModel):
    label_id: uuid.UUID
    version: int = Field(description="0: no action plan saved")
    rule: dict[str, Any] | None = Field(description="the plan as a rule: triggered by entering this label")
    versions: list[int]
