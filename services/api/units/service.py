"""Floor plans and units: CRUD scoped by organization; a unit that becomes available reactivates aged leads."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.pagination import decode_cursor, encode_cursor
from services.api.patching import apply_patch
from services.api.properties.service import get_property
from services.api.units.reactivation import reactivate_for_unit
from services.api.units.schemas import FloorPlanCreate, FloorPlanUpdate, UnitCreate, UnitUpdate
from shared import clock
from shared.enums import UnitStatus
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import FloorPlan, Unit


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field.rsplit('.', 1)[-1]} is not valid.", errors=[{"field": field, "message": message}])


def _check_rent_range(rent_min: int | None, rent_max: int | None) -> None:
    if rent_min is not None and rent_max is not None and rent_max < rent_min:
        raise invalid("body.rent_max", "must be at least rent_min")


async def _unique_name(session: AsyncSession, plan: FloorPlan) -> None:
    clash = await session.scalar(
        select(FloorPlan.id).where(
            FloorPlan.org_id == plan.org_id,
            FloorPlan.property_id == plan.property_id,
            FloorPlan.name == plan.name,
            FloorPlan.id != plan.id,
        )
    )
    if clash is not None:
        raise Conflict(
            "This property already has a floor plan with that name.",
            errors=[{"field": "body.name", "message": "already used on this property"}],
        )


async def create_floor_plan(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID, body: FloorPlanCreate
) -> FloorPlan:
    await get_property(session, org_id, property_id)  # another organization's property: 404
    _check_rent_range(body.rent_min, body.rent_max)
    plan = FloorPlan(id=uuid.uuid4(), org_id=org_id, property_id=property_id, **body.model_dump())
    await _unique_name(session, plan)
    session.add(plan)
    await session.flush()
    return plan


async def list_floor_plans(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID) -> list[FloorPlan]:
    await get_property(session, org_id, property_id)
    query = select(FloorPlan).where(FloorPlan.org_id == org_id, FloorPlan.property_id == property_id)
    return list((await session.scalars(query.order_by(FloorPlan.bedrooms, FloorPlan.name).limit(1000))).all())


async def get_floor_plan(session: AsyncSession, org_id: uuid.UUID, plan_id: uuid.UUID) -> FloorPlan:
    plan = await session.scalar(select(FloorPlan).where(FloorPlan.id == plan_id, FloorPlan.org_id == org_id))
    if plan is None:
        raise NotFound("Floor plan not found.")
    return plan


async def update_floor_plan(
    session: AsyncSession, org_id: uuid.UUID, plan_id: uuid.UUID, body: FloorPlanUpdate
) -> FloorPlan:
    plan = await get_floor_plan(session, org_id, plan_id)
    apply_patch(plan, body.model_dump(exclude_unset=True), not_nullable=("name", "bedrooms", "pet_policy"))
    _check_rent_range(plan.rent_min, plan.rent_max)
    await _unique_name(session, plan)
    plan.updated_at = clock.now()
    await session.flush()
    return plan


async def delete_floor_plan(session: AsyncSession, org_id: uuid.UUID, plan_id: uuid.UUID) -> None:
    plan = await get_floor_plan(session, org_id, plan_id)
    used = await session.scalar(select(Unit.id).where(Unit.floor_plan_id == plan.id).limit(1))
    if used is not None:
        raise Conflict("Units still use this floor plan; move or delete them first.")
    await session.delete(plan)
    await session.flush()


async def _plan_for_unit(session: AsyncSession, org_id: uuid.UUID, plan_id: uuid.UUID) -> FloorPlan:
    plan = await session.scalar(select(FloorPlan).where(FloorPlan.id == plan_id, FloorPlan.org_id == org_id))
    if plan is None:
        raise invalid("body.floor_plan_id", "not a floor plan of this organization")
    return plan


async def _unique_number(session: AsyncSession, unit: Unit) -> None:
    clash = await session.scalar(
        select(Unit.id).where(
            Unit.org_id == unit.org_id,
            Unit.property_id == unit.property_id,
            Unit.number == unit.number,
            Unit.id != unit.id,
        )
    )
    if clash is not None:
        raise Conflict(
            "This property already has a unit with that number.",
            errors=[{"field": "body.number", "message": "already used on this property"}],
        )


async def create_unit(
    session: AsyncSession, org_id: uuid.UUID, body: UnitCreate, *, reactivation_days: int
) -> tuple[Unit, list[uuid.UUID]]:
    plan = await _plan_for_unit(session, org_id, body.floor_plan_id)
    unit = Unit(id=uuid.uuid4(), org_id=org_id, property_id=plan.property_id, **body.model_dump())
    if unit.status == UnitStatus.available:
        unit.available_since = clock.now()
    await _unique_number(session, unit)
    session.add(unit)
    await session.flush()
    reactivated: list[uuid.UUID] = []
    if unit.status == UnitStatus.available:
        reactivated = await reactivate_for_unit(session, unit, plan, days=reactivation_days, now=clock.now())
    return unit, reactivated


async def get_unit(session: AsyncSession, org_id: uuid.UUID, unit_id: uuid.UUID, lock: bool = False) -> Unit:
    query = select(Unit).where(Unit.id == unit_id, Unit.org_id == org_id)
    if lock:
        query = query.with_for_update()
    unit = await session.scalar(query)
    if unit is None:
        raise NotFound("Unit not found.")
    return unit


async def update_unit(
    session: AsyncSession, org_id: uuid.UUID, unit_id: uuid.UUID, body: UnitUpdate, *, reactivation_days: int
) -> tuple[Unit, list[uuid.UUID]]:
    unit = await get_unit(session, org_id, unit_id, lock=True)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    previous = unit.status
    if changes.get("floor_plan_id") is not None:
        plan = await _plan_for_unit(session, org_id, changes["floor_plan_id"])
        if plan.property_id != unit.property_id:
            raise invalid("body.floor_plan_id", "a floor plan of another property")
    apply_patch(unit, changes, not_nullable=("floor_plan_id", "number", "status"))
    became_available = unit.status == UnitStatus.available and previous != UnitStatus.available
    if became_available:
        unit.available_since = clock.now()
    elif unit.status != UnitStatus.available:
        unit.available_since = None
    await _unique_number(session, unit)
    unit.updated_at = clock.now()
    await session.flush()
    reactivated: list[uuid.UUID] = []
    if became_available:
        plan = await _plan_for_unit(session, org_id, unit.floor_plan_id)
        reactivated = await reactivate_for_unit(session, unit, plan, days=reactivation_days, now=clock.now())
    return unit, reactivated


async def delete_unit(session: AsyncSession, org_id: uuid.UUID, unit_id: uuid.UUID) -> None:
    unit = await get_unit(session, org_id, unit_id)
    await session.delete(unit)
    await session.flush()


async def list_units(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    property_id: uuid.UUID | None,
    floor_plan_id: uuid.UUID | None,
    status: UnitStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Unit], str | None]:
    query = select(Unit).where(Unit.org_id == org_id)
    if property_id is not None:
        query = query.where(Unit.property_id == property_id)
    if floor_plan_id is not None:
        query = query.where(Unit.floor_plan_id == floor_plan_id)
    if status is not None:
        query = query.where(Unit.status == status)
    if cursor:
        number, raw_id = decode_cursor(cursor)
        query = query.where(tuple_(Unit.number, Unit.id) > (number, uuid.UUID(raw_id)))
    rows = list((await session.scalars(query.order_by(Unit.number, Unit.id).limit(limit + 1))).all())
    next_cursor = encode_cursor([rows[limit - 1].number, rows[limit - 1].id]) if len(rows) > limit else None
    return rows[:limit], next_cursor
