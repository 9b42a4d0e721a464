from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from services.api.deps import ManagerDep, SessionDep
from services.api.imports.service import import_leads
from shared.errors import PayloadTooLarge, ValidationFailed

router = APIRouter(prefix="/v1/leads", tags=["leads"])

MAX_BYTES = 10 * 1024 * 1024


class ImportResult(BaseModel):
    rows: int
    created: int
    attached: int = Field(description="rows that matched a known renter and were added to them, not duplicated")
    failed: int
    dry_run: bool
    ignored_columns: list[str]
    errors: list[dict[str, Any]] = Field(description="one per problem: row (1-based, header = 1), field, message")
    lead_ids: list[str]


@router.post(
    "/import",
    response_model=ImportResult,
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_csv(
    request: Request,
    principal: ManagerDep,
    session: SessionDep,
    dry_run: bool = False,
    property_id: uuid.UUID | None = None,
) -> ImportResult:
    """Import leads from CSV (a header row; columns such as name, email, phone, property, source, status,
    move-in date, bedrooms, budget, pets, notes, owner_email). Known renters are attached to, never
    duplicated, so importing the same file twice creates nothing new. `dry_run=true` reports without saving."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BYTES:
        raise PayloadTooLarge(f"A CSV import is at most {MAX_BYTES // (1024 * 1024)} MB.")
    raw = await request.body()
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge(f"A CSV import is at most {MAX_BYTES // (1024 * 1024)} MB.")
    if not raw.strip():
        raise ValidationFailed(
            "The request body is empty.", errors=[{"field": "body", "message": "send the CSV as the body"}]
        )
    report = await import_leads(session, principal, raw, dry_run=dry_run, default_property_id=property_id)
    return ImportResult(**report.__dict__)
