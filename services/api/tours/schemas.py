from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.enums import TourStatus, TourType


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TourCreate(_Body):
    starts_at: datetime
    tour_type: TourType = TourType.in_person
    agent_id: uuid.UUID | None = None
    notes: str | None = Field(None, max_length=10_000)


class TourUpdate(_Body):
    status: TourStatus | None = None
    starts_at: datetime | None = None
    tour_type: TourType | None = None
    agent_id: uuid.UUID | None = None
    notes: str | None = Field(None, max_length=10_000)


class TourOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    lead_id: uuid.UUID
    property_id: uuid.UUID | None
    starts_at: datetime
    status: TourStatus
    tour_type: str
    agent_id: uuid.UUID | None
    notes: str | None
    created_at: datetime
    updated_at: datetime
