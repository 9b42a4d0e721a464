"""Turning a path id into the caller's lead (or a 404), and the If-Match / ETag helpers."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.deps import PrincipalDep, SessionDep
from services.api.owners.scope import ensure_in_scope
from shared.errors import NotFound, PreconditionFailed, PreconditionRequired, ValidationFailed
from shared.models import Lead


async def load_lead(session: AsyncSession, org_id: uuid.UUID, lead_id: uuid.UUID, lock: bool = False) -> Lead:
    query = select(Lead).where(Lead.id == lead_id, Lead.org_id == org_id)
    if lock:
        # writers queue on the row, so a second writer holding the same ETag sees the bumped version
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    lead = await session.scalar(query)
    if lead is None:
        raise NotFound("Lead not found.")
    return lead


async def _lead(lead_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Lead:
    await ensure_in_scope(session, principal, lead_id)  # an agent's lead outside its scope is a 404
    return await load_lead(session, principal.org_id, lead_id)


async def _locked_lead(lead_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Lead:
    await ensure_in_scope(session, principal, lead_id)
    return await load_lead(session, principal.org_id, lead_id, lock=True)


LeadDep = Annotated[Lead, Depends(_lead)]
LockedLeadDep = Annotated[Lead, Depends(_locked_lead)]

IfMatch = Annotated[str | None, Header(alias="If-Match", description='the lead\'s ETag, e.g. "3"; required for PATCH')]


def etag(version: int) -> str:
    return f'"{version}"'


# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc excludes DQUOTE, so a comma may sit inside
_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')


def parse_if_match(value: str) -> set[str] | None:
    """The strong opaque tags an If-Match lists; None for `*` (any current representation).

    Weak tags are parsed but never match (If-Match uses the strong comparison, RFC 9110 §13.1.1); a header
    that is not `*` or a list of entity-tags is a 422 naming it.
    """
    if value.strip() == "*":
        return None
    tags: set[str] = set()
    position = 0
    while position < len(value):
        if not value[position:].strip(" \t,"):
            break
        found = _ENTITY_TAG.match(value, position)
        if found is None:
            raise ValidationFailed(
                "If-Match is not `*` or a list of entity-tags.",
                errors=[{"field": "header.If-Match", "message": 'expected "*" or entity-tags like "3"'}],
            )
        if found.group(1) is None:
            tags.add(found.group(2))
        position = found.end()
    return tags


def check_if_match(lead: Lead, if_match: str | None, *, required: bool) -> None:
    if if_match is None or not if_match.strip():
        if required:
            raise PreconditionRequired("Send the lead's ETag in If-Match to update it.")
        return
    tags = parse_if_match(if_match)
    if tags is not None and str(lead.version) not in tags:
        raise PreconditionFailed("The lead changed since you read it; reload and retry.", current_version=lead.version)
