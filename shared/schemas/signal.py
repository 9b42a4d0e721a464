"""LeadSignal: the one normalized shape every inbound payload becomes.

The intake worker produces it; `POST /v1/internal/signals` consumes it. Parsers fill what the sender gave
and leave the rest None: a blank never overwrites a known value downstream.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.enums import Channel, ContactKind, MatchVerdict, SignalEvent


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        """Renter text can carry NUL bytes (broken mail clients); PostgreSQL text cannot store them."""
        return value.replace("\x00", "") if isinstance(value, str) else value


class SignalContact(_Model):
    full_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = Field(None, description="normalized real email of the person (never a relay)")
    phone: str | None = Field(None, description="E.164")
    phone_extension: str | None = None
    reply_to: str | None = Field(None, description="a reply channel that is not an identity, e.g. an ILS relay address")
    kind: ContactKind = ContactKind.tenant


class SignalSource(_Model):
    source: str = Field(description="normalized source key: zillow, apartments_com, website, phone, ...")
    sub_source: str | None = Field(None, description="brand / tracking number / campaign detail")
    medium: str | None = None
    campaign: str | None = None
    utm: dict[str, str] = Field(default_factory=dict)


class PropertyHint(_Model):
    listing_id: str | None = None
    address: str | None = None
    name: str | None = None
    tracking_number: str | None = Field(None, description="E.164 number the renter called or texted")
    inbound_alias: str | None = Field(None, description="the address the email was sent to")
    property_id: UUID | None = Field(None, description="set when resolved to a configured property")


class SignalPreferences(_Model):
    move_in_date: date | None = None
    move_in_text: str | None = Field(None, description="vague phrase kept as text: 'flexible', 'ASAP'")
    bedrooms: int | None = Field(None, ge=0, le=20, description="studio = 0")
    bathrooms: float | None = None
    budget_min: int | None = Field(None, ge=0, description="whole dollars per month")
    budget_max: int | None = Field(None, ge=0)
    pets: bool | None = None
    pets_text: str | None = None
    unit_type: str | None = None
    lease_length_months: int | None = None
    occupants: int | None = None
    preferred_tour_times: list[str] = Field(default_factory=list)


class LeadSignal(_Model):
    """A normalized inbound touch from one renter."""

    event: SignalEvent
    channel: Channel
    occurred_at: datetime
    contact: SignalContact
    source: SignalSource
    property: PropertyHint = Field(default_factory=PropertyHint)
    preferences: SignalPreferences = Field(default_factory=SignalPreferences)
    message: str | None = Field(None, description="the renter's own words, quoted text stripped")
    subject: str | None = None
    caller_name: str | None = Field(
        None, description="caller-ID name exactly as the carrier sent it; kept on the event, a name only if real"
    )
    external_ids: dict[str, str] = Field(
        default_factory=dict, description="sender ids: message_id, call_sid, voyager_code, thread ..."
    )
    agent_hint: str | None = Field(
        None, max_length=320, description="the agent the renter picked (email or name); renter_choice reads it"
    )


class MatchCandidate(_Model):
    contact_id: UUID
    matched_on: list[str] = Field(default_factory=list, description="identity kinds that matched")


class MatchResult(_Model):
    """The worker's verdict on who this renter is, with the reasons a person can read."""

    verdict: MatchVerdict
    contact_id: UUID | None = None
    candidates: list[MatchCandidate] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class SignalEnvelope(_Model):
    """Body of POST /v1/internal/signals."""

    inbound_id: UUID
    org_id: UUID
    signal: LeadSignal
    match: MatchResult


class SignalOutcome(_Model):
    # both null for a STOP/START from a number nobody knows: consent is recorded, no contact or lead is made
    contact_id: UUID | None
    lead_id: UUID | None
    created: bool
    contact_created: bool = False
    review_item_id: UUID | None = None


class SignalResult(_Model):
    """One item of the batch answer of POST /v1/internal/signals (a list in, a list out, same order).

    `status` is what the single form would have answered: 200 with the outcome, 4xx refused (the detail
    says why), 5xx not applied this time (retry it). Each signal is applied in its own savepoint.
    """

    inbound_id: UUID
    status: int
    outcome: SignalOutcome | None = None
    detail: str | None = None
