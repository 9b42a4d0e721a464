"""CSV import of units: upsert by (property, number), one savepoint per row, `dry_run` rolls everything back.

Columns (header names are case- and space-insensitive): number (required), floor_plan (the plan's name,
required for a new unit), rent, available_on (YYYY-MM-DD), status, property (name; optional when the
request names `property_id`).
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.imports.service import RowError, _describe  # one row-error shape for every CSV import
from services.api.properties.service import get_property
from services.api.units import service
from services.api.units.schemas import UnitCreate, UnitUpdate
from shared.errors import DomainError, ValidationFailed
from shared.models import FloorPlan, Property, Unit

MAX_ROWS = 20_000
ALIASES = {
    "number": "number",
    "unit": "number",
    "unit_number": "number",
    "floor_plan": "floor_plan",
    "floorplan": "floor_plan",
    "plan": "floor_plan",
    "rent": "rent",
    "market_rent": "rent",
    "available_on": "available_on",
    "available": "available_on",
    "available_date": "available_on",
    "status": "status",
    "property": "property",
}


@dataclass
class UnitImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    dry_run: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    unit_ids: list[uuid.UUID] = field(default_factory=list)
    reactivated_lead_ids: list[uuid.UUID] = field(default_factory=list)


def _canonical(name: str) -> str | None:
    return ALIASES.get(name.strip().lower().replace(" ", "_").replace("-", "_"))


def read_rows(raw: bytes) -> list[dict[str, str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        return _rows(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise ValidationFailed(
            "The CSV could not be read.", errors=[{"field": "body", "message": str(error)}]
        ) from None


def _rows(reader: Any) -> list[dict[str, str]]:
    header = next(reader, None)
    if not header or "number" not in [_canonical(h) for h in header]:
        raise ValidationFailed(
            "No unit number column found.", errors=[{"field": "body", "message": "the header needs a number column"}]
        )
    names = [_canonical(h) for h in header]
    rows = []
    for values in reader:
        if any(value.strip() for value in values):
            rows.append({n: v.strip() for n, v in zip(names, values, strict=False) if n and v.strip()})
        if len(rows) > MAX_ROWS:
            raise ValidationFailed(f"At most {MAX_ROWS} rows.", errors=[{"field": "body", "message": "too many rows"}])
    return rows


def _int(row: dict[str, str], name: str) -> int | None:
    raw = row.get(name)
    if raw is None:
        return None
    cleaned = raw.replace("$", "").replace(",", "").strip()
    try:
        return int(float(cleaned))
    except ValueError as error:
        raise RowError(name, f"not a number: {raw!r}") from error


def _date(row: dict[str, str], name: str) -> date | None:
    raw = row.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as error:
        raise RowError(name, f"not a date (YYYY-MM-DD): {raw!r}") from error


async def import_units(
    session: AsyncSession,
    org_id: uuid.UUID,
    raw: bytes,
    *,
    dry_run: bool,
    property_id: uuid.UUID | None,
    reactivation_days: int,
) -> UnitImportReport:
    rows = read_rows(raw)
    if property_id is not None:
        await get_property(session, org_id, property_id)
    report = UnitImportReport(rows=len(rows), dry_run=dry_run)
    properties = {
        name.lower(): pid
        for pid, name in (await session.execute(select(Property.id, Property.name).where(Property.org_id == org_id)))
    }
    plans = {
        (pid, name.lower()): plan_id
        for plan_id, pid, name in await session.execute(
            select(FloorPlan.id, FloorPlan.property_id, FloorPlan.name).where(FloorPlan.org_id == org_id)
        )
    }
    outer = await session.begin_nested() if dry_run else None
    for number, row in enumerate(rows, start=2):
        savepoint = await session.begin_nested()
        try:
            created, unit_id, reactivated = await _row(
                session, org_id, row, property_id, properties, plans, reactivation_days
            )
            await savepoint.commit()
        except (RowError, ValidationError, DomainError) as error:
            await savepoint.rollback()
            report.failed += 1
            report.errors.extend(_describe(number, error))
            continue
        report.created += int(created)
        report.updated += int(not created)
        report.unit_ids.append(unit_id)
        report.reactivated_lead_ids.extend(reactivated)
    if outer is not None:
        await outer.rollback()
    return report


async def _row(
    session: AsyncSession,
    org_id: uuid.UUID,
    row: dict[str, str],
    default_property: uuid.UUID | None,
    properties: dict[str, uuid.UUID],
    plans: dict[tuple[uuid.UUID, str], uuid.UUID],
    reactivation_days: int,
) -> tuple[bool, uuid.UUID, list[uuid.UUID]]:
    prop_id = default_property
    if row.get("property"):
        prop_id = properties.get(row["property"].lower())
        if prop_id is None:
            raise RowError("property", f"no property named {row['property']!r}")
    if prop_id is None:
        raise RowError("property", "name a property column or pass property_id")
    values: dict[str, Any] = {"number": row.get("number")}
    if "floor_plan" in row:
        plan_id = plans.get((prop_id, row["floor_plan"].lower()))
        if plan_id is None:
            raise RowError("floor_plan", f"no floor plan named {row['floor_plan']!r} on this property")
        values["floor_plan_id"] = plan_id
    for name in ("rent",):
        if name in row:
            values[name] = _int(row, name)
    if "available_on" in row:
        values["available_on"] = _date(row, "available_on")
    if "status" in row:
        values["status"] = row["status"].lower().replace(" ", "_")
    existing = await session.scalar(
        select(Unit.id).where(Unit.org_id == org_id, Unit.property_id == prop_id, Unit.number == values["number"])
    )
    if existing is None:
        if "floor_plan_id" not in values:
            raise RowError("floor_plan", "required for a new unit")
        unit, reactivated = await service.create_unit(
            session, org_id, UnitCreate(**values), reactivation_days=reactivation_days
        )
        return True, unit.id, reactivated
    unit, reactivated = await service.update_unit(
        session, org_id, existing, UnitUpdate(**values), reactivation_days=reactivation_days
    )
    return False, unit.id, reactivated
