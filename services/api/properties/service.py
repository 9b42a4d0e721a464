from __future__ import annotations

import uuid

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.pagination import decode_cursor, encode_cursor
from services.api.patching import apply_patch
from services.api.properties.schemas import PropertyCreate, PropertyUpdate
from shared.errors import NotFound
from shared.models import Property


async def create_property(session: AsyncSession, org_id: uuid.UUID, data: PropertyCreate) -> Property:
    row = Property(org_id=org_id, **data.model_dump())
    session.add(row)
    await session.flush()
    return row


async def get_property(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID, include_archived: bool = False
) -> Property:
    """An archived property is gone from the working set (404) unless asked for by `include_archived`."""
    row = await session.scalar(select(Property).where(Property.id == property_id, Property.org_id == org_id))
    if row is None or (row.is_archived and not include_archived):
        raise NotFound("Property not found.")
    return row


async def list_properties(
    session: AsyncSession, org_id: uuid.UUID, limit: int, cursor: str | None, include_archived: bool
) -> tuple[list[Property], str | None]:
    query = select(Property).where(Property.org_id == org_id)
    if not include_archived:
        query = query.where(Property.is_archived.is_(False))
    if cursor:
        name, raw_id = decode_cursor(cursor)
        query = query.where(tuple_(Property.name, Property.id) > (name, uuid.UUID(raw_id)))
    rows = list((await session.scalars(query.order_by(Property.name, Property.id).limit(limit + 1))).all())
    next_cursor = encode_cursor([rows[limit - 1].name, rows[limit - 1].id]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def update_property(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID, data: PropertyUpdate, include_archived: bool
) -> Property:
    row = await get_property(session, org_id, property_id, include_archived)
    apply_patch(
        row,
        data.model_dump(exclude_unset=True),
        not_nullable=("name", "country", "timezone", "phone_numbers", "listing_ids", "is_archived"),
    )
    await session.flush()
    return row


async def archive_property(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID) -> None:
    row = await get_property(session, org_id, property_id)
    row.is_archived = True
    await session.flush()
