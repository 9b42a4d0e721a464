from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.api.leads.schemas import LeadOut


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    value: str
    source: str | None
    created_at: datetime


class ContactOut(BaseModel):
    id: uuid.UUID
    kind: str
    full_name: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    sms_consent: str
    email_consent: str
    merged_into_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    identities: list[IdentityOut]
    leads: list[LeadOut]
