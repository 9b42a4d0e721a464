"""CSV export of the lead list: same filters and order, streamed from a server-side cursor.

The body is produced after the request's transaction has ended, so the generator opens its own
connection; rows arrive `yield_per` at a time and each batch is written through a small buffer, which keeps
memory flat at a million rows.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.leads.queries import LeadFilters, apply_filters, apply_order, lead_select
from shared.models import Lead, Property, User

BATCH = 2000
COLUMNS = [
    "id",
    "contact_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "kind",
    "property_id",
    "property_name",
    "status",
    "status_label",
    "temperature",
    "source",
    "sub_source",
    "latest_source",
    "owner_id",
    "owner_name",
    "owner_email",
    "move_in_date",
    "move_in_text",
    "bedrooms",
    "bathrooms",
    "budget_min",
    "budget_max",
    "pets",
    "pets_text",
    "unit_type",
    "created_at",
    "updated_at",
    "first_response_at",
    "first_response_seconds",
    "last_touch_at",
    "next_action_type",
    "next_action_due_at",
    "lost_reason",
]
# free text a spreadsheet would run as a formula (CSV injection); system-normalized values are left alone
_TEXT = {"first_name", "last_name", "property_name", "status_label", "source", "sub_source", "latest_source"}
_TEXT |= {"owner_name", "move_in_text", "pets_text", "unit_type"}


def export_query(org_id: uuid.UUID, filters: LeadFilters) -> Select[Any]:
    query = (
        lead_select(org_id)
        .add_columns(Property.name.label("property_name"), User.name.label("owner_name"))
        .add_columns(User.email.label("owner_email"))
        .outerjoin(Property, Property.id == Lead.property_id)
        .outerjoin(User, User.id == Lead.owner_id)
    )
    return apply_order(apply_filters(query, org_id, filters), filters.sort, None)


def _cell(key: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if key in _TEXT and isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def stream_csv(engine: AsyncEngine, org_id: uuid.UUID, filters: LeadFilters) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    query = export_query(org_id, filters).execution_options(yield_per=BATCH)
    async with engine.connect() as connection:
        result = await connection.stream(query)
        async for rows in result.mappings().partitions(BATCH):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([_cell(key, row[key]) for key in COLUMNS] for row in rows)
            yield buffer.getvalue()
