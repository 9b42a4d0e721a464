from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.enums import InboundStatus


class InboundSummary(BaseModel):
    """A delivery without its body (ops list)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    status: InboundStatus
    reason: str | None
    parser: str | None
    source: str | None
    content_type: str
    body_size: int
    attempts: int
    lead_id: uuid.UUID | None
    contact_id: uuid.UUID | None
    property_id: uuid.UUID | None = Field(
        None, description="the configured property it concerns, when resolved (also for ignored anonymous calls)"
    )
    received_at: datetime
    processed_at: datetime | None


class InboundDetail(InboundSummary):
    headers: dict[str, str] = Field(description="as received, lower-cased; credentials dropped")
    query: dict[str, str]
    signal: dict[str, Any] | None = Field(None, description="the parsed LeadSignal")
    match: dict[str, Any] | None = Field(None, description="the matching verdict and its reasons")


class InboundPage(BaseModel):
    items: list[InboundSummary]
    next_cursor: str | None


class ReplayAccepted(BaseModel):
    inbound_id: uuid.UUID
    status: InboundStatus
    job_id: str
