from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from services.api.types import IsoDateTime
from shared.enums import TourStatus, TourType
from shared.working_hours import WorkingHours

NAIVE_RULE = (
    "A time without a UTC offset is read as wall-clock time in the property's timezone (a repeated hour "
    "takes its first occurrence; a time skipped by a DST jump is refused with 422). Leads without a property "
    "must send an offset."
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TourCreate(_Body):
    starts_at: IsoDateTime | None = Field(None, description=f"the tour's start. {NAIVE_RULE}")
    slot: IsoDateTime | None = Field(
        None, description="a `starts_at` from GET /v1/properties/{id}/tour-slots; the agent is chosen (owner first)"
    )
    tour_type: TourType = TourType.in_person
    agent_id: uuid.UUID | None = Field(None, description="who gives the tour; default: the owner if free, else any")
    unit_id: uuid.UUID | None = Field(None, description="the unit to show")
    notes: str | None = Field(None, max_length=10_000)


class TourUpdate(_Body):
    status: TourStatus | None = Field(None, description="completed and no_show only after the start time")
    starts_at: IsoDateTime | None = Field(None, description=f"reschedule. {NAIVE_RULE}")
    tour_type: TourType | None = None
    agent_id: uuid.UUID | None = None
    unit_id: uuid.UUID | None = None
    notes: str | None = Field(None, max_length=10_000)
    reason: str | None = Field(None, max_length=2000, description="why it was canceled or rescheduled (history)")


class TourReschedule(_Body):
    starts_at: IsoDateTime = Field(description=NAIVE_RULE)
    agent_id: uuid.UUID | None = Field(None, description="default: the same agent")
    reason: str | None = Field(None, max_length=2000)


class TourCancel(_Body):
    reason: str | None = Field(None, max_length=2000)


class TourOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    lead_id: uuid.UUID
    property_id: uuid.UUID | None
    unit_id: uuid.UUID | None
    starts_at: datetime
    ends_at: datetime
    starts_at_local: str | None = Field(None, description="starts_at in the property's timezone, ISO 8601")
    timezone: str | None = None
    status: TourStatus
    tour_type: str
    agent_id: uuid.UUID | None
    notes: str | None
    canceled_at: datetime | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime


class TourChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    from_starts_at: datetime | None
    to_starts_at: datetime | None
    from_agent_id: uuid.UUID | None
    to_agent_id: uuid.UUID | None
    from_status: str | None
    to_status: str | None
    reason: str | None
    actor_id: uuid.UUID | None
    occurred_at: datetime


class TourDetail(TourOut):
    history: list[TourChangeOut]


class SlotOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    starts_at_local: str
    agent_ids: list[uuid.UUID] = Field(description="agents free then (empty for self-guided)")


class TourSlots(BaseModel):
    property_id: uuid.UUID
    date: date
    timezone: str
    tour_type: TourType
    length_minutes: int
    buffer_minutes: int
    slots: list[SlotOut]


class TourSettingsIn(_Body):
    length_minutes: StrictInt = Field(30, ge=5, le=480)
    buffer_minutes: StrictInt = Field(15, ge=0, le=240, description="kept free after each tour")
    interval_minutes: StrictInt = Field(30, ge=5, le=240, description="slots start every this many minutes")
    min_notice_minutes: StrictInt = Field(60, ge=0, le=60 * 24 * 14)
    tour_types: list[TourType] = Field(default_factory=lambda: list(TourType), min_length=1)
    default_hours: WorkingHours | None = Field(
        None, description="hours of team members without their own, and of the office; default 09:00-18:00 daily"
    )
    self_guided_hours: WorkingHours | None = Field(None, description="default: default_hours")


class TourSettingsOut(TourSettingsIn):
    property_id: uuid.UUID


class BlackoutIn(_Body):
    starts_at: IsoDateTime = Field(description=NAIVE_RULE)
    ends_at: IsoDateTime = Field(description=NAIVE_RULE)
    reason: str | None = Field(None, max_length=200)


class BlackoutOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    property_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str | None


class CalendarLink(BaseModel):
    url: str = Field(description="subscribe to this in a calendar app; anyone holding it can read the feed")
    token: str
