from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from services.api.types import IsoDate
from shared.enums import PetPolicy, UnitStatus


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FloorPlanCreate(_Body):
    name: str = Field(min_length=1, max_length=100)
    bedrooms: StrictInt = Field(ge=0, le=20, description="0 = studio")
    bathrooms: StrictFloat | None = Field(None, ge=0, le=20)
    sqft: StrictInt | None = Field(None, gt=0, le=100_000)
    rent_min: StrictInt | None = Field(None, ge=0, le=1_000_000, description="whole dollars a month")
    rent_max: StrictInt | None = Field(None, ge=0, le=1_000_000)
    pet_policy: PetPolicy = PetPolicy.case_by_case
    pet_notes: str | None = Field(None, max_length=2000)


class FloorPlanUpdate(_Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    bedrooms: StrictInt | None = Field(None, ge=0, le=20)
    bathrooms: StrictFloat | None = Field(None, ge=0, le=20)
    sqft: StrictInt | None = Field(None, gt=0, le=100_000)
    rent_min: StrictInt | None = Field(None, ge=0, le=1_000_000)
    rent_max: StrictInt | None = Field(None, ge=0, le=1_000_000)
    pet_policy: PetPolicy | None = None
    pet_notes: str | None = Field(None, max_length=2000)


class FloorPlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    property_id: uuid.UUID
    name: str
    bedrooms: int
    bathrooms: float | None
    sqft: int | None
    rent_min: int | None
    rent_max: int | None
    pet_policy: PetPolicy
    pet_notes: str | None
    created_at: datetime
    updated_at: datetime


class UnitCreate(_Body):
    floor_plan_id: uuid.UUID = Field(description="the unit's floor plan; the unit belongs to that plan's property")
    number: str = Field(min_length=1, max_length=32)
    rent: StrictInt | None = Field(None, ge=0, le=1_000_000, description="asking rent; null = the plan's rent_min")
    available_on: IsoDate | None = Field(None, description="first move-in day; null = now")
    status: UnitStatus = UnitStatus.available


class UnitUpdate(_Body):
    floor_plan_id: uuid.UUID | None = None
    number: str | None = Field(None, min_length=1, max_length=32)
    rent: StrictInt | None = Field(None, ge=0, le=1_000_000)
    available_on: IsoDate | None = None
    status: UnitStatus | None = None


class UnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    property_id: uuid.UUID
    floor_plan_id: uuid.UUID
    number: str
    rent: int | None
    available_on: date | None
    status: UnitStatus
    available_since: datetime | None = Field(None, description="when it last became available")
    created_at: datetime
    updated_at: datetime


class UnitWriteOut(UnitOut):
    reactivated_lead_ids: list[uuid.UUID] = Field(
        default_factory=list, description="aged leads this write reactivated (the unit became available or was added)"
    )


class UnitPage(BaseModel):
    items: list[UnitOut]
    next_cursor: str | None


class UnitImportResult(BaseModel):
    rows: int
    created: int
    updated: int
    failed: int
    dry_run: bool
    errors: list[dict[str, object]] = Field(description="one per problem: row (1-based, header = 1), field, message")
    unit_ids: list[uuid.UUID]
    reactivated_lead_ids: list[uuid.UUID]


class MatchReason(BaseModel):
    criterion: str = Field(description="bedrooms | budget | move_in | pets")
    ok: bool
    text: str


class UnitMatch(BaseModel):
    unit: UnitOut
    floor_plan: str
    bedrooms: int
    effective_rent: int | None
    score: int = Field(description="100 minus penalties; see docs/tours.md")
    matched: bool = Field(description="no criterion falls short")
    reasons: list[MatchReason]
    summary: str = Field(description='e.g. "$150 over budget; available 10 days after move-in"')


class Criteria(BaseModel):
    bedrooms: int | None
    budget_max: int | None
    move_in_date: date | None
    pets: bool | None
    match_portfolio: bool
    unit_digest_opt_in: bool


class MatchingUnits(BaseModel):
    lead_id: uuid.UUID
    scope: str = Field(description="property | portfolio")
    criteria: Criteria
    items: list[UnitMatch]


class CriteriaFlags(_Body):
    match_portfolio: StrictBool | None = Field(None, description="match and reactivate across every property")
    unit_digest_opt_in: StrictBool | None = Field(None, description="the renter asked for a daily digest of new units")
