"""Wire shapes of leads (DESIGN §4). Names, email and phone come from the contact."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from shared.enums import ContactKind, LeadStatus, LostReason, NextActionType, Temperature
from shared.normalize.email import normalize_email
from shared.normalize.phone import normalize_phone


class NextAction(BaseModel):
    type: str
    due_at: datetime | None
    owner_id: uuid.UUID | None


class LeadOut(BaseModel):
    id: uuid.UUID
    contact_id: uuid.UUID
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None = Field(description="E.164")
    callback_phone: str | None = Field(
        None,
        description="E.164 number the renter gave that belongs to another contact (a shared line under review): "
        "for calling back, never used to match",
    )
    kind: str
    status: LeadStatus
    status_label: str | None = Field(description="the organization's own name for the status, if set")
    temperature: Temperature
    source: str | None
    sub_source: str | None
    latest_source: str | None
    property_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    move_in_date: date | None
    move_in_text: str | None
    bedrooms: int | None
    bathrooms: float | None
    budget_min: int | None = Field(description="whole dollars per month")
    budget_max: int | None
    pets: bool | None
    pets_text: str | None
    unit_type: str | None
    lease_length_months: int | None
    occupants: int | None
    preferred_tour_times: list[str]
    next_action: NextAction | None
    first_response_at: datetime | None
    first_response_seconds: int | None
    last_touch_at: datetime | None
    lost_reason: str | None
    lost_reason_text: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class LeadPage(BaseModel):
    items: list[LeadOut]
    next_cursor: str | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeadFields(_Body):
    """Lead attributes a person may set on create or update."""

    kind: ContactKind | None = None
    property_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    temperature: Temperature | None = None
    source: str | None = Field(None, max_length=64)
    sub_source: str | None = Field(None, max_length=200)
    move_in_date: date | None = None
    move_in_text: str | None = Field(None, max_length=200)
    bedrooms: int | None = Field(None, ge=0, le=20, description="studio = 0")
    bathrooms: float | None = Field(None, ge=0, le=20)
    budget_min: int | None = Field(None, ge=0, description="whole dollars per month")
    budget_max: int | None = Field(None, ge=0)
    pets: StrictBool | None = None
    pets_text: str | None = Field(None, max_length=300)
    unit_type: str | None = Field(None, max_length=100)
    lease_length_months: int | None = Field(None, ge=1, le=120)
    occupants: int | None = Field(None, ge=1, le=50)
    preferred_tour_times: list[str] | None = None


class LeadCreate(LeadFields):
    first_name: str | None = Field(None, max_length=150)
    last_name: str | None = Field(None, max_length=150)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40, description="any format; stored as E.164")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        normalized = normalize_email(value)
        if normalized is None:
            raise ValueError("not a valid email address")
        return normalized

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        e164, _ = normalize_phone(value)
        if e164 is None:
            raise ValueError("not a valid phone number")
        return e164


class NextActionIn(_Body):
    type: NextActionType
    due_at: datetime | None = None
    owner_id: uuid.UUID | None = None


class LeadUpdate(LeadFields):
    """Only the fields sent are changed (exclude_unset); email and phone change through identities."""

    first_name: str | None = Field(None, max_length=150)
    last_name: str | None = Field(None, max_length=150)
    next_action: NextActionIn | None = None


class StatusChange(_Body):
    status: LeadStatus
    lost_reason: LostReason | None = None
    lost_reason_text: str | None = Field(None, max_length=2000)
    status_label_id: uuid.UUID | None = None


class TimelineEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    type: str
    occurred_at: datetime
    actor_type: str
    actor_id: uuid.UUID | None
    source: str | None
    channel: str | None
    property_id: uuid.UUID | None
    data: dict[str, Any]


class TimelinePage(BaseModel):
    items: list[TimelineEvent]
    next_cursor: str | None
