"""Per-organization values that never identify a renter (placeholders, shared lines, whole domains)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from services.api.deps import ManagerDep, SessionDep
from shared.errors import NotFound
from shared.models import BlocklistEntry
from shared.normalize.email import normalize_email
from shared.normalize.phone import normalize_phone

router = APIRouter(prefix="/v1/blocklist", tags=["identity"])


class BlocklistCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["email", "phone", "email_domain"]
    value: str = Field(min_length=1, max_length=320)
    reason: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _canonical(self) -> BlocklistCreate:
        if self.kind == "email":
            email = normalize_email(self.value)
            if email is None:
                raise ValueError("value is not an email address")
            self.value = email
        elif self.kind == "phone":
            phone, _ = normalize_phone(self.value)
            if phone is None:
                raise ValueError("value is not a phone number")
            self.value = phone
        else:
            self.value = self.value.strip().lstrip("@").lower()
        return self


class BlocklistOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: str
    value: str
    reason: str | None
    created_at: datetime


@router.get("", response_model=list[BlocklistOut])
async def list_entries(principal: ManagerDep, session: SessionDep) -> list[BlocklistOut]:
    rows = await session.scalars(
        select(BlocklistEntry)
        .where(BlocklistEntry.org_id == principal.org_id)
        .order_by(BlocklistEntry.kind, BlocklistEntry.value)
    )
    return [BlocklistOut.model_validate(row) for row in rows]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BlocklistOut)
async def add_entry(body: BlocklistCreate, principal: ManagerDep, session: SessionDep) -> BlocklistOut:
    """Idempotent: adding the same value again returns the existing entry."""
    await session.execute(
        insert(BlocklistEntry)
        .values(id=uuid.uuid4(), org_id=principal.org_id, kind=body.kind, value=body.value, reason=body.reason)
        .on_conflict_do_nothing(index_elements=["org_id", "kind", "value"])
    )
    row = await session.scalar(
        select(BlocklistEntry).where(
            BlocklistEntry.org_id == principal.org_id,
            BlocklistEntry.kind == body.kind,
            BlocklistEntry.value == body.value,
        )
    )
    return BlocklistOut.model_validate(row)


@router.delete("/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_entry(entry_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> Response:
    result = await session.execute(
        delete(BlocklistEntry).where(BlocklistEntry.id == entry_id, BlocklistEntry.org_id == principal.org_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("Blocklist entry not found.")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
