from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import ManagerDep, SessionDep
from services.api.imports import batches
from services.api.imports.presets import PRESETS
from services.api.imports.router import MAX_BYTES
from shared.errors import PayloadTooLarge, ValidationFailed

router = APIRouter(prefix="/v1/imports", tags=["imports"])


class ImportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    status: str = Field(description="queued | running | done | failed | undone")
    dry_run: bool
    filename: str | None
    preset: str
    mapping: dict[str, str]
    default_property_id: uuid.UUID | None
    total_rows: int
    processed_rows: int
    counts: dict[str, int] = Field(description="created, attached, review, rejected, unchanged")
    errors: list[dict[str, Any]] = Field(description="rejected rows: row (1-based, header = 1), field, message")
    details: list[dict[str, Any]] = Field(description="why rows were attached, sent to review or left unchanged")
    ignored_columns: list[str]
    failure: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    undone_at: datetime | None


class ImportPage(BaseModel):
    items: list[ImportOut]


class Preset(BaseModel):
    name: str
    columns: dict[str, str] = Field(description="normalized header → field (plus the generic aliases)")


@router.post(
    "",
    response_model=ImportOut,
    status_code=202,
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def create_import(
    request: Request,
    principal: ManagerDep,
    session: SessionDep,
    preset: Annotated[str, Query(description=f"one of {sorted(PRESETS)}")] = "generic",
    mapping: Annotated[
        str | None, Query(description='JSON {"CSV header": "field"}; wins over the preset; "" ignores a column')
    ] = None,
    dry_run: bool = False,
    property_id: uuid.UUID | None = None,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> ImportOut:
    """Import a CSV as a batch: every row is matched like intake (a conflict opens a review item), rows are
    keyed so re-importing changes nothing, and a finished import can be undone. Runs in the worker; poll
    `GET /v1/imports/{id}` for progress and counts. `dry_run=true` reports without saving."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BYTES:
        raise PayloadTooLarge(f"A CSV import is at most {MAX_BYTES // (1024 * 1024)} MB.")
    raw = await request.body()
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge(f"A CSV import is at most {MAX_BYTES // (1024 * 1024)} MB.")
    if not raw.strip():
        raise ValidationFailed("The request body is empty.", errors=[{"field": "body", "message": "send the CSV"}])
    batch = await batches.create_batch(
        session,
        principal.org_id,
        principal.user_id,
        raw,
        preset=preset,
        mapping=batches.parse_mapping(mapping),
        dry_run=dry_run,
        default_property_id=property_id,
        filename=filename,
    )
    return ImportOut.model_validate(batch)


@router.get("", response_model=ImportPage)
async def list_imports(principal: ManagerDep, session: SessionDep) -> ImportPage:
    return ImportPage(
        items=[ImportOut.model_validate(b) for b in await batches.list_batches(session, principal.org_id)]
    )


@router.get("/presets", response_model=list[Preset])
async def list_presets(principal: ManagerDep) -> list[Preset]:
    """Column layouts: `generic` (common CRM/spreadsheet headers), `guestcard` (our export.csv), `knock`
    (Knock's published prospect fields). A `mapping` may name any import field (see docs/integrations.md)."""
    return [Preset(name=name, columns=columns) for name, columns in PRESETS.items()]


@router.get("/{import_id}", response_model=ImportOut)
async def get_import(import_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> ImportOut:
    return ImportOut.model_validate(await batches.get_batch(session, principal.org_id, import_id))


@router.post("/{import_id}/undo", response_model=ImportOut)
async def undo_import(import_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> ImportOut:
    """Take the whole import back: created renters and leads are deleted, notes and identities it added to
    known renters are removed, its review items closed away. 409 if its renters have since been merged."""
    return ImportOut.model_validate(await batches.undo_batch(session, principal.org_id, import_id))
