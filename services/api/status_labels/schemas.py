from __future__ import annotations

import uuid
from datetime import datetime

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
