"""Turning a path id into the caller's lead (or a 404), and the If-Match / ETag helpers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.deps import PrincipalDep, SessionDep
from shared.errors import NotFound, PreconditionFailed, PreconditionRequired, ValidationFailed
from shared.models import Lead


async def load_lead(session: AsyncSession, org_id: uuid.UUID, lead_id: uuid.UUID, lock: bool = False) -> Lead:
    query = select(Lead).where(Lead.id == lead_id, Lead.org_id == org_id)
    if lock:
        # writers queue on the row, so a second writer holding the same ETag sees the bumped version
        query = query.with_for_update().execution_options(populate_existing=True)
    lead = await session.scalar(query)
    if lead is None:
        raise NotFound("Lead not found.")
    return lead


async def _lead(lead_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Lead:
    return await load_lead(session, principal.org_id, lead_id)


async def _locked_lead(lead_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Lead:
    return await load_lead(session, principal.org_id, lead_id, lock=True)


LeadDep = Annotated[Lead, Depends(_lead)]
LockedLeadDep = Annotated[Lead, Depends(_locked_lead)]

IfMatch = Annotated[str | None, Header(alias="If-Match", description='the lead\'s ETag, e.g. "3"; required for PATCH')]


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str) -> set[int] | None:
    """The versions an If-Match accepts; None for `*`."""
    versions: set[int] = set()
    for part in value.split(","):
        tag = part.strip()
        if tag == "*":
            return None
        tag = tag.removeprefix("W/").strip('"')
        if not tag.isdigit():
            raise ValidationFailed(
                "If-Match is not a valid ETag.",
                errors=[{"field": "header.If-Match", "message": 'expected "<version>"'}],
            )
        versions.add(int(tag))
    return versions


def check_if_match(lead: Lead, if_match: str | None, *, required: bool) -> None:
    if if_match is None or not if_match.strip():
        if required:
            raise PreconditionRequired("Send the lead's ETag in If-Match to update it.")
        return
    versions = parse_if_match(if_match)
    if versions is not None and lead.version not in versions:
        raise PreconditionFailed("The lead changed since you read it; reload and retry.", current_version=lead.version)
