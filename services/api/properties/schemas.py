from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from shared.normalize.phone import normalize_phone


def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError("unknown IANA timezone") from error
    return value


def _phones(values: list[str], country: str = "US") -> list[str]:
    result = []
    for raw in values:
        e164, _ = normalize_phone(raw, country)
        if e164 is None:
            raise ValueError(f"not a valid phone number: {raw!r}")
        if e164 not in result:
            result.append(e164)
    return result


URL = r"^https?://\S+$"


class PropertyBase(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PropertyCreate(PropertyBase):
    name: str = Field(min_length=1, max_length=200)
    address_line1: str | None = Field(None, max_length=200)
    address_line2: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=100)
    state: str | None = Field(None, max_length=50)
    postal_code: str | None = Field(None, max_length=20)
    country: str = Field("US", min_length=2, max_length=2)
    timezone: str = "America/New_York"
    phone_numbers: list[str] = Field(default_factory=list, description="tracking and office numbers, any format")
    listing_ids: list[str] = Field(default_factory=list, description="ids ILS feeds use for this property")
    inbound_alias: str | None = Field(None, max_length=320, description="email address ILS alerts are sent to")
    application_url: str | None = Field(
        None, max_length=2000, pattern=URL, description="{{application_link}} in templates (else the org's default)"
    )

    _tz = field_validator("timezone")(_check_timezone)

    @field_validator("phone_numbers")
    @classmethod
    def _normalize_phones(cls, values: list[str]) -> list[str]:
        return _phones(values)

    @field_validator("inbound_alias")
    @classmethod
    def _lower_alias(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value


class PropertyUpdate(PropertyBase):
    name: str | None = Field(None, min_length=1, max_length=200)
    address_line1: str | None = Field(None, max_length=200)
    address_line2: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=100)
    state: str | None = Field(None, max_length=50)
    postal_code: str | None = Field(None, max_length=20)
    country: str | None = Field(None, min_length=2, max_length=2)
    timezone: str | None = None
    phone_numbers: list[str] | None = None
    listing_ids: list[str] | None = None
    inbound_alias: str | None = Field(None, max_length=320)
    application_url: str | None = Field(None, max_length=2000, pattern=URL)
    is_archived: StrictBool | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _check_timezone(value) if value is not None else None

    @field_validator("phone_numbers")
    @classmethod
    def _normalize_phones(cls, values: list[str] | None) -> list[str] | None:
        return _phones(values) if values is not None else None


class PropertyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    address_line1: str | None
    address_line2: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str
    timezone: str
    phone_numbers: list[str]
    listing_ids: list[str]
    inbound_alias: str | None
    application_url: str | None
    is_archived: bool
    created_at: datetime
    updated_at: datetime


class PropertyPage(BaseModel):
    items: list[PropertyOut]
    next_cursor: str | None
