"""Keys and users of the caller's organization."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from services.api.auth import service
from services.api.deps import AdminDep, PrincipalDep, SessionDep
from services.api.problems import PROBLEM_MEDIA_TYPE, Problem
from shared.enums import Role
from shared.models import ApiKey, Organization, User

router = APIRouter(prefix="/v1", tags=["auth"])


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.agent
    user_id: uuid.UUID | None = None


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    prefix: str
    role: Role
    user_id: uuid.UUID | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="shown once; only its hash is stored")


class IntakeKeyOut(BaseModel):
    intake_key: str = Field(description="shown once; the old key stops working now")


class MeOut(BaseModel):
    org_id: uuid.UUID
    org_name: str
    role: Role
    key_id: uuid.UUID | None
    user_id: uuid.UUID | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.agent


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    email: str
    name: str
    role: Role
    is_active: bool


@router.get("/me", response_model=MeOut)
async def me(principal: PrincipalDep, session: SessionDep) -> MeOut:
    org = await session.get_one(Organization, principal.org_id)
    return MeOut(
        org_id=org.id,
        org_name=org.name,
        role=principal.role,
        key_id=principal.key_id,
        user_id=principal.user_id,
    )


@router.get("/api-keys", response_model=list[ApiKeyOut])
async def list_keys(principal: AdminDep, session: SessionDep) -> list[ApiKeyOut]:
    rows = await session.scalars(select(ApiKey).where(ApiKey.org_id == principal.org_id).order_by(ApiKey.created_at))
    return [ApiKeyOut.model_validate(row) for row in rows]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_key(body: ApiKeyCreate, principal: AdminDep, session: SessionDep) -> ApiKeyCreated:
    secret, row = await service.create_api_key(session, principal.org_id, body.name, body.role, body.user_id)
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=secret)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
async def revoke_key(key_id: uuid.UUID, principal: AdminDep, session: SessionDep) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await service.revoke_api_key(session, principal.org_id, key_id))


@router.post("/intake-key/rotate", response_model=IntakeKeyOut)
async def rotate_intake_key(principal: AdminDep, session: SessionDep) -> IntakeKeyOut:
    return IntakeKeyOut(intake_key=await service.rotate_intake_key(session, principal.org_id))


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={
        409: {"description": "a user with this email exists", "model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}
    },
)
async def create_user(body: UserCreate, principal: AdminDep, session: SessionDep) -> UserOut:
    from sqlalchemy.exc import IntegrityError

    from shared.errors import Conflict

    row = User(org_id=principal.org_id, email=body.email.strip().lower(), name=body.name, role=body.role)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as error:
        raise Conflict("A user with this email already exists.") from error
    return UserOut.model_validate(row)
