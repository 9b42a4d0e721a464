"""A property's tour settings and blackout times."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.properties.service import get_property
from services.api.tours.booking import invalid, read_time
from services.api.tours.schemas import BlackoutIn, TourSettingsIn, TourSettingsOut
from services.api.tours.slots import ALL_TYPES
from shared import clock
from shared.errors import NotFound
from shared.models import TourBlackout, TourSettings


async def get_settings(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID) -> TourSettingsOut:
    await get_property(session, org_id, property_id)
    row = await session.scalar(
        select(TourSettings).where(TourSettings.org_id == org_id, TourSettings.property_id == property_id)
    )
    if row is None:
        return TourSettingsOut(property_id=property_id, tour_types=ALL_TYPES)  # type: ignore[arg-type]
    return TourSettingsOut.model_validate(
        {
            "property_id": property_id,
            "length_minutes": row.length_minutes,
            "buffer_minutes": row.buffer_minutes,
            "interval_minutes": row.interval_minutes,
            "min_notice_minutes": row.min_notice_minutes,
            "tour_types": row.tour_types,
            "default_hours": row.default_hours,
            "self_guided_hours": row.self_guided_hours,
        }
    )


async def put_settings(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID, body: TourSettingsIn
) -> TourSettingsOut:
    await get_property(session, org_id, property_id)
    row = await session.scalar(
        select(TourSettings)
        .where(TourSettings.org_id == org_id, TourSettings.property_id == property_id)
        .with_for_update()
    )
    if row is None:
        row = TourSettings(id=uuid.uuid4(), org_id=org_id, property_id=property_id)
        session.add(row)
    row.length_minutes = body.length_minutes
    row.buffer_minutes = body.buffer_minutes
    row.interval_minutes = body.interval_minutes
    row.min_notice_minutes = body.min_notice_minutes
    row.tour_types = [t.value for t in dict.fromkeys(body.tour_types)]
    row.default_hours = body.default_hours.model_dump(mode="json") if body.default_hours else None
    row.self_guided_hours = body.self_guided_hours.model_dump(mode="json") if body.self_guided_hours else None
    row.updated_at = clock.now()
    await session.flush()
    return await get_settings(session, org_id, property_id)


async def add_blackout(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID, body: BlackoutIn
) -> TourBlackout:
    prop = await get_property(session, org_id, property_id)
    starts_at = read_time(body.starts_at, prop, "body.starts_at")
    ends_at = read_time(body.ends_at, prop, "body.ends_at")
    if ends_at <= starts_at:
        raise invalid("body.ends_at", "must be after starts_at")
    row = TourBlackout(
        id=uuid.uuid4(),
        org_id=org_id,
        property_id=property_id,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=body.reason,
    )
    session.add(row)
    await session.flush()
    return row


async def list_blackouts(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID) -> list[TourBlackout]:
    await get_property(session, org_id, property_id)
    query = select(TourBlackout).where(
        TourBlackout.org_id == org_id, TourBlackout.property_id == property_id, TourBlackout.ends_at > clock.now()
    )
    return list((await session.scalars(query.order_by(TourBlackout.starts_at).limit(1000))).all())


async def delete_blackout(session: AsyncSession, org_id: uuid.UUID, blackout_id: uuid.UUID) -> None:
    row = await session.scalar(
        select(TourBlackout).where(TourBlackout.id == blackout_id, TourBlackout.org_id == org_id)
    )
    if row is None:
        raise NotFound("Blackout not found.")
    await session.delete(row)
    await session.flush()
