"""Assignment settings as the deciding code reads them: the property's row, else the organization's default,
else the built-in default (round robin, no offers, SLA 15 minutes in working hours / 1 hour outside)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api import txmemo
from shared.models import AssignmentSetting, Organization, Property
from shared.working_hours import zone

STRATEGIES = ("round_robin", "renter_choice", "pool", "fixed")


@dataclass(frozen=True)
class AssignmentConfig:
    strategy: str = "round_robin"
    fallback_strategy: str = "round_robin"
    fixed_user_id: uuid.UUID | None = None
    offers_enabled: bool = False
    offer_timeout_minutes: int = 5
    sla_minutes: int = 15
    sla_after_hours_minutes: int = 60
    sla_reassign: bool = False
    source: str = "built-in default"

    @classmethod
    def from_row(cls, row: AssignmentSetting, source: str) -> AssignmentConfig:
        return cls(
            strategy=row.strategy,
            fallback_strategy=row.fallback_strategy,
            fixed_user_id=row.fixed_user_id,
            offers_enabled=row.offers_enabled,
            offer_timeout_minutes=row.offer_timeout_minutes,
            sla_minutes=row.sla_minutes,
            sla_after_hours_minutes=row.sla_after_hours_minutes,
            sla_reassign=row.sla_reassign,
            source=source,
        )


async def load_config(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None) -> AssignmentConfig:
    return await txmemo.remember_config(
        session, org_id, ("owners.config", org_id, property_id), lambda: _load_config(session, org_id, property_id)
    )


async def _load_config(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None) -> AssignmentConfig:
    condition: ColumnElement[bool] = AssignmentSetting.property_id.is_(None)
    if property_id is not None:
        condition = or_(condition, AssignmentSetting.property_id == property_id)
    rows = list(await session.scalars(select(AssignmentSetting).where(AssignmentSetting.org_id == org_id, condition)))
    for row in rows:
        if row.property_id is not None:
            return AssignmentConfig.from_row(row, "property")
    if rows:
        return AssignmentConfig.from_row(rows[0], "organization default")
    return AssignmentConfig()


async def timezone_for(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None) -> ZoneInfo:
    """The property's timezone (team working hours are written in it), else the organization's."""
    return await txmemo.remember_config(
        session, org_id, ("owners.timezone", org_id, property_id), lambda: _timezone_for(session, org_id, property_id)
    )


async def _timezone_for(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None) -> ZoneInfo:
    if property_id is not None:
        name = await session.scalar(select(Property.timezone).where(Property.id == property_id))
        if name:
            return zone(name)
    return zone(await session.scalar(select(Organization.timezone).where(Organization.id == org_id)))
