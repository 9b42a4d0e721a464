"""Bodies of the work logged on a lead: notes, calls/meetings, invitations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.enums import ActivityDirection, ActivityKind
from shared.normalize.email import normalize_email


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteCreate(_Body):
    body: str = Field(min_length=1, max_length=10_000)


class ActivityCreate(_Body):
    kind: ActivityKind
    direction: ActivityDirection = ActivityDirection.outbound
    outcome: str | None = Field(None, max_length=64, description="e.g. connected, voicemail, no_answer")
    notes: str | None = Field(None, max_length=10_000)
    occurred_at: datetime | None = Field(None, description="defaults to now")


def _email(value: str) -> str:
    normalized = normalize_email(value)
    if normalized is None:
        raise ValueError("not a valid email address")
    return normalized


InviteEmail = Annotated[str, AfterValidator(_email)]


class InvitationRequest(_Body):
    emails: list[InviteEmail] = Field(min_length=1, max_length=500)
    property_id: uuid.UUID | None = None
    message: str | None = Field(None, max_length=5_000)


class InvitationResult(BaseModel):
    email: str
    lead_id: uuid.UUID
    created: bool


class InvitationResponse(BaseModel):
    items: list[InvitationResult]
