"""Importing leads from CSV: each row goes through the same path as a manual add with on_duplicate=attach.

So an import is as race-safe as intake (identity-key locks, the identity constraint), re-importing the same
file creates nothing new, and a renter already known from an ILS is attached to, never duplicated. Each row
runs in its own savepoint: a bad row is reported with its row number and field and the others still land.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from typing import Any

from nameparser import HumanName
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.imports.columns import canonical
from services.api.leads import status as lead_status
from services.api.leads.create import create_lead
from services.api.leads.events import add_event, add_status_event
from services.api.leads.schemas import LeadCreate
from services.api.leads.service import run_rules
from shared import clock
from shared.enums import EventType, LeadStatus
from shared.errors import DomainError, InvalidTransition, ValidationFailed
from shared.models import Property, User
from shared.normalize.dates import parse_move_in
from shared.normalize.money import parse_money_range

MAX_ROWS = 50_000
TRUE = {"yes", "y", "true", "1", "x"}
FALSE = {"no", "n", "false", "0", "none"}


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    attached: int = 0
    failed: int = 0
    dry_run: bool = False
    ignored_columns: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    lead_ids: list[str] = field(default_factory=list)


class RowError(Exception):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name
        self.message = message


def read_rows(raw: bytes) -> tuple[list[dict[str, str]], list[str]]:
    """Decode (UTF-8 with or without BOM, else Latin-1), sniff the delimiter, map headers."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    # newline="": the csv module reads line endings itself (a lone CR inside a field is data, not an error)
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        return _mapped_rows(reader)
    except csv.Error as error:  # e.g. a field over the csv module's size limit: bad input, not a 500
        raise ValidationFailed(
            "The file is not readable CSV.", errors=[{"field": "body", "message": str(error)}]
        ) from error


def _mapped_rows(reader: Any) -> tuple[list[dict[str, str]], list[str]]:
    header = next(reader, None)
    if not header:
        raise ValidationFailed("The file is empty.", errors=[{"field": "body", "message": "no header row"}])
    mapped = [canonical(name) for name in header]
    if not any(name in ("email", "phone", "first_name", "last_name", "full_name") for name in mapped):
        raise ValidationFailed(
            "No name, email or phone column found.",
            errors=[{"field": "body", "message": "the header needs name, first_name, last_name, email or phone"}],
        )
    ignored = [original for original, name in zip(header, mapped, strict=True) if name is None]
    rows = []
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        rows.append(
            {name: value.strip() for name, value in zip(mapped, values, strict=False) if name and value.strip()}
        )
        if len(rows) > MAX_ROWS:
            raise ValidationFailed(
                f"At most {MAX_ROWS} rows per import.", errors=[{"field": "body", "message": "too many rows"}]
            )
    return rows, ignored


async def import_leads(
    session: AsyncSession, principal: Principal, raw: bytes, *, dry_run: bool, default_property_id: uuid.UUID | None
) -> ImportReport:
    rows, ignored = read_rows(raw)
    report = ImportReport(rows=len(rows), dry_run=dry_run, ignored_columns=ignored)
    properties = await _properties(session, principal.org_id)
    owners = await _owners(session, principal.org_id)
    outer = await session.begin_nested() if dry_run else None
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        savepoint = await session.begin_nested()
        try:
            body, status, notes = _lead_body(row, properties, owners, default_property_id)
            lead, created = await create_lead(session, principal, body, on_duplicate="attach")
            await _apply_row_extras(session, principal, lead, status, notes, created)
            await savepoint.commit()
        except (RowError, ValidationError, DomainError) as error:
            await savepoint.rollback()
            report.failed += 1
            report.errors.extend(_describe(number, error))
            continue
        report.created += int(created)
        report.attached += int(not created)
        report.lead_ids.append(str(lead.id))
    if outer is not None:
        await outer.rollback()
    return report


def _describe(number: int, error: Exception) -> list[dict[str, Any]]:
    if isinstance(error, RowError):
        return [{"row": number, "field": error.field_name, "message": error.message}]
    if isinstance(error, ValidationError):
        return [
            {"row": number, "field": ".".join(str(part) for part in item["loc"]) or "row", "message": item["msg"]}
            for item in error.errors()
        ]
    assert isinstance(error, DomainError)
    fields = error.errors or [{"field": "row", "message": error.detail}]
    return [
        {
            "row": number,
            "field": str(item.get("field", "row")).removeprefix("body."),
            "message": item.get("message", error.detail),
        }
        for item in fields
    ]


async def _properties(session: AsyncSession, org_id: uuid.UUID) -> dict[str, uuid.UUID]:
    rows = await session.execute(select(Property.id, func.lower(Property.name)).where(Property.org_id == org_id))
    found: dict[str, uuid.UUID] = {}
    for property_id, name in rows:
        found[str(property_id)] = property_id
        found.setdefault(name, property_id)
    return found


async def _owners(session: AsyncSession, org_id: uuid.UUID) -> dict[str, uuid.UUID]:
    rows = await session.execute(
        select(User.id, func.lower(User.email)).where(User.org_id == org_id, User.is_active.is_(True))
    )
    return {email: user_id for user_id, email in rows}


def _lead_body(
    row: dict[str, str],
    properties: dict[str, uuid.UUID],
    owners: dict[str, uuid.UUID],
    default_property_id: uuid.UUID | None,
) -> tuple[LeadCreate, LeadStatus | None, str | None]:
    values: dict[str, Any] = {
        key: row[key]
        for key in ("first_name", "last_name", "email", "phone", "source", "sub_source", "unit_type", "kind")
        if key in row
    }
    if "full_name" in row and not (values.get("first_name") or values.get("last_name")):
        name = HumanName(row["full_name"])
        values["first_name"] = name.first or None
        values["last_name"] = name.last or None
    values["source"] = (values.get("source") or "import").strip().lower().replace(" ", "_")[:64]
    if "kind" in values:
        values["kind"] = values["kind"].lower()
    property_ref = row.get("property_id") or row.get("property")
    if property_ref:
        property_id = properties.get(property_ref.lower()) or properties.get(property_ref)
        if property_id is None:
            raise RowError("property", f"no property named {property_ref!r} in this organization")
        values["property_id"] = property_id
    elif default_property_id:
        values["property_id"] = default_property_id
    if "owner_email" in row:
        owner = owners.get(row["owner_email"].lower())
        if owner is None:
            raise RowError("owner_email", "not an active user of this organization")
        values["owner_id"] = owner
    if "move_in_date" in row:
        move_in, vague = parse_move_in(row["move_in_date"], clock.now())
        values["move_in_date"], values["move_in_text"] = move_in, vague
    if "bedrooms" in row:
        text = row["bedrooms"].lower()
        values["bedrooms"] = 0 if text.startswith("studio") else text.split()[0].rstrip("+")
    if "budget_min" in row or "budget_max" in row:
        low, _ = parse_money_range(row.get("budget_min", ""))
        range_low, high = parse_money_range(row.get("budget_max", ""))
        values["budget_min"] = low if low is not None else (range_low if high is not None else None)
        values["budget_max"] = high if high is not None else range_low
    if "pets" in row:
        answer = row["pets"].lower()
        values["pets"] = True if answer in TRUE else False if answer in FALSE else None
        values["pets_text"] = None if answer in TRUE | FALSE else row["pets"]
    status = None
    if "status" in row:
        try:
            status = LeadStatus(row["status"].strip().lower().replace(" ", "_"))
        except ValueError as error:
            raise RowError("status", f"unknown status {row['status']!r}") from error
    return LeadCreate.model_validate(values), status, row.get("notes")


async def _apply_row_extras(
    session: AsyncSession, principal: Principal, lead: Any, status: LeadStatus | None, notes: str | None, created: bool
) -> None:
    now = clock.now()
    actor: dict[str, Any] = {"actor_type": "user", "actor_id": principal.user_id, "source": "import"}
    if notes:
        add_event(
            session, lead, EventType.note, occurred_at=now, data={"body": notes[:5000], "imported": True}, **actor
        )
    if status is not None and created and status != lead.status:
        if status == LeadStatus.lost:
            raise RowError("status", "import lost leads with a lost reason through the status endpoint")
        try:
            lead_status.check_transition(LeadStatus(lead.status), status)
        except InvalidTransition as error:
            allowed = ", ".join(error.extra.get("allowed", []))
            raise RowError("status", f"{error.detail} Allowed from {lead.status}: {allowed}.") from error
        previous = lead_status.apply_status(lead, status, now)
        add_status_event(session, lead, previous, occurred_at=now, reason="imported", **actor)
        await run_rules(session, lead, status, now)  # the imported status decides the next step
    await session.flush()
