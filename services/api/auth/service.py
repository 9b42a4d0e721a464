"""Organizations, users and keys: bootstrap and key lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth import cache as principal_cache
from services.api.auth.keys import API_KEY_PREFIX, INTAKE_KEY_PREFIX, display_prefix, hash_secret, new_secret
from shared import clock
from shared.enums import Role
from shared.errors import NotFound, ValidationFailed
from shared.models import ApiKey, Organization, User


@dataclass(frozen=True)
class Principal:
    """Who is calling: every query is scoped by `org_id`."""

    org_id: uuid.UUID
    role: Role
    key_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None


@dataclass(frozen=True)
class CreatedOrganization:
    org: Organization
    admin: User
    api_key: str
    intake_key: str


async def create_organization(
    session: AsyncSession, name: str, admin_email: str | None = None, country: str = "US"
) -> CreatedOrganization:
    intake_key = new_secret(INTAKE_KEY_PREFIX)
    org = Organization(id=uuid.uuid4(), name=name, intake_key_hash=hash_secret(intake_key), default_country=country)
    session.add(org)
    await session.flush()
    admin = User(org_id=org.id, email=admin_email or f"admin@{org.id.hex[:8]}.invalid", name="Admin", role=Role.admin)
    session.add(admin)
    await session.flush()
    key, _ = await create_api_key(session, org.id, "bootstrap", Role.admin, user_id=admin.id)
    return CreatedOrganization(org=org, admin=admin, api_key=key, intake_key=intake_key)


async def create_api_key(
    session: AsyncSession, org_id: uuid.UUID, name: str, role: Role, user_id: uuid.UUID | None = None
) -> tuple[str, ApiKey]:
    if (
        user_id is not None
        and await session.scalar(select(User.id).where(User.id == user_id, User.org_id == org_id)) is None
    ):
        raise ValidationFailed(
            "No such user in this organization.", errors=[{"field": "body.user_id", "message": "unknown user"}]
        )
    secret = new_secret(API_KEY_PREFIX)
    row = ApiKey(
        org_id=org_id,
        name=name,
        role=role,
        user_id=user_id,
        prefix=display_prefix(secret),
        key_hash=hash_secret(secret),
    )
    session.add(row)
    await session.flush()
    return secret, row


async def revoke_api_key(session: AsyncSession, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    row = await session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.org_id == org_id))
    if row is None:
        raise NotFound("API key not found")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
    await session.flush()
    principal_cache.invalidate(session, key_ids=[row.id])
    return row


async def rotate_intake_key(session: AsyncSession, org_id: uuid.UUID) -> str:
    intake_key = new_secret(INTAKE_KEY_PREFIX)
    await session.execute(
        update(Organization).where(Organization.id == org_id).values(intake_key_hash=hash_secret(intake_key))
    )
    return intake_key


PRINCIPAL_COLUMNS: list[Any] = [ApiKey.id, ApiKey.org_id, ApiKey.role, ApiKey.user_id]


def principal_select(key_hash: Any) -> Select[Any]:
    """The live key with this hash (a value or a bind parameter), with what a Principal needs: the one query of
    a caller's key, for the route's dependency and the hot reads' fast path alike."""
    return (
        select(*PRINCIPAL_COLUMNS)
        .outerjoin(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        .where(or_(ApiKey.user_id.is_(None), User.is_active.is_(True)))  # a deactivated user's keys stop
    )


def principal_of(row: Any) -> Principal:
    """A Principal from a row of `principal_select` (read by column name)."""
    return Principal(org_id=row["org_id"], role=Role(row["role"]), key_id=row["id"], user_id=row["user_id"])


async def principal_for_key(session: AsyncSession, secret: str) -> Principal | None:
    row = (await session.execute(principal_select(hash_secret(secret)))).mappings().first()
    return None if row is None else principal_of(row)
