"""Request and response bodies of the owners endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from services.api.types import IsoDateTime
from shared.enums import Role
from shared.working_hours import WorkingHours

Strategy = Literal["round_robin", "renter_choice", "pool", "fixed"]
Fallback = Literal["round_robin", "pool"]


class TeamMembership(BaseModel):
    property_id: uuid.UUID
    weight: int
    on_shift: bool


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    is_active: bool
    mobile_phone: str | None
    away_until: datetime | None
    availability: Literal["available", "away", "inactive"]
    teams: list[TeamMembership] = Field(default_factory=list)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    email: str | None = Field(None, min_length=3, max_length=320)
    mobile_phone: str | None = Field(None, max_length=32)
    role: Role | None = None
    active: StrictBool | None = None
    away_until: IsoDateTime | None = None


class ReassignOut(BaseModel):
    assigned: int = 0
    offered: int = 0
    pooled: int = 0


class TeamMemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: uuid.UUID
    weight: StrictInt = Field(1, ge=1, le=10)
    working_hours: WorkingHours | None = None


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[TeamMemberIn]


class TeamMemberOut(BaseModel):
    user_id: uuid.UUID
    name: str
    weight: int
    working_hours: WorkingHours | None
    available: bool


class TeamOut(BaseModel):
    property_id: uuid.UUID
    members: list[TeamMemberOut]


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategy: Strategy
    fixed_user_id: uuid.UUID | None = Field(None, description="the agent of `fixed`")
    fallback_strategy: Fallback = Field("round_robin", description="when renter_choice has no pick, or fixed is out")
    offers_enabled: StrictBool = Field(False, description="offer the picked agent the lead instead of assigning it")
    offer_timeout_minutes: StrictInt = Field(5, ge=1, le=1440)
    sla_minutes: StrictInt = Field(15, ge=1, le=10080, description="first human response, someone on shift")
    sla_after_hours_minutes: StrictInt = Field(60, ge=1, le=10080, description="first human response, nobody on shift")
    sla_reassign: StrictBool = Field(False, description="reassign a lead whose owner breached the SLA")


class AssignmentOut(AssignmentIn):
    model_config = ConfigDict(extra="ignore")
    property_id: uuid.UUID | None
    source: str = Field(description="property | organization default | built-in default")


class OwnersSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agents_see_all: StrictBool | None = Field(None, description="agents see every lead, not only theirs and their pool")
    agents_can_reassign: StrictBool | None = Field(None, description="agents may change a lead's owner")


class OfferOut(BaseModel):
    id: uuid.UUID
    lead_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    reason: str | None
    attempt: int
    offered_at: datetime
    expires_at: datetime
    answered_at: datetime | None
    answer_seconds: int | None
    link: str | None = Field(None, description="the one-click accept/decline page; only on your own pending offers")


class OfferPage(BaseModel):
    items: list[OfferOut]


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=500)


class CollaboratorsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_ids: list[uuid.UUID] = Field(max_length=50)


class CollaboratorsOut(BaseModel):
    lead_id: uuid.UUID
    user_ids: list[uuid.UUID]


class ClaimOut(BaseModel):
    lead_id: uuid.UUID
    owner_id: uuid.UUID
