"""Checks that ids in a request body point at the caller's organization (else a 422 naming the field)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import ValidationFailed
from shared.models import Property, StatusLabel, User


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field.rsplit('.', 1)[-1]} is not valid.", errors=[{"field": field, "message": message}])


async def ensure_user(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID | None, field: str) -> None:
    if user_id is None:
        return
    found = await session.scalar(
        select(User.id).where(User.id == user_id, User.org_id == org_id, User.is_active.is_(True))
    )
    if found is None:
        raise _invalid(field, "not an active user of this organization")


async def ensure_property(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None, field: str) -> None:
    if property_id is None:
        return
    found = await session.scalar(select(Property.id).where(Property.id == property_id, Property.org_id == org_id))
    if found is None:
        raise _invalid(field, "not a property of this organization")


async def ensure_status_label(
    session: AsyncSession, org_id: uuid.UUID, label_id: uuid.UUID, status: str, field: str
) -> None:
    canonical = await session.scalar(
        select(StatusLabel.canonical_status).where(StatusLabel.id == label_id, StatusLabel.org_id == org_id)
    )
    if canonical is None:
        raise _invalid(field, "not a status label of this organization")
    if canonical != status:
        raise _invalid(field, f"this label maps to {canonical}, not {status}")
