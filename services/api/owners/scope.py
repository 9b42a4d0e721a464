"""Which leads a caller may see and act on: the one rule for lists, detail, timeline, export, metrics, writes.

Admins and managers: every lead of the organization. Agents: the leads they own, the leads they collaborate
on, and the unowned leads (the pool) of the properties whose team they are on; the organization setting
`agents_see_all` gives agents everything. Outside the scope is a 404, exactly like another organization's lead.
"""

from __future__ import annotations

import uuid

from sqlalchemy import exists, false, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api.auth.service import Principal
from shared.enums import Role
from shared.errors import NotFound
from shared.models import Lead, LeadCollaborator, Organization, PropertyTeamMember


def scope_condition(principal: Principal, agents_see_all: bool) -> ColumnElement[bool] | None:
    """A WHERE condition on `leads` for this caller, or None when it sees the whole organization."""
    if principal.role in (Role.admin, Role.manager) or agents_see_all:
        return None
    user_id = principal.user_id
    if user_id is None:
        return false()  # an agent key that belongs to nobody owns nothing
    collaborates = (
        exists()
        .where(LeadCollaborator.lead_id == Lead.id, LeadCollaborator.user_id == user_id)
        .correlate_except(LeadCollaborator)  # stays correlated when rendered for the metrics' raw SQL
    )
    my_properties = select(PropertyTeamMember.property_id).where(PropertyTeamMember.user_id == user_id)
    pool = Lead.owner_id.is_(None) & Lead.property_id.in_(my_properties)
    return (Lead.owner_id == user_id) | collaborates | pool


async def lead_scope(session: AsyncSession, principal: Principal) -> ColumnElement[bool] | None:
    """`scope_condition` with the organization's setting read: call this once per request."""
    if principal.role in (Role.admin, Role.manager):
        return None
    see_all = await session.scalar(select(Organization.agents_see_all).where(Organization.id == principal.org_id))
    return scope_condition(principal, bool(see_all))


async def lead_in_scope(session: AsyncSession, principal: Principal, lead_id: uuid.UUID) -> bool:
    condition = await lead_scope(session, principal)
    if condition is None:
        return True
    found = await session.scalar(select(Lead.id).where(Lead.id == lead_id, Lead.org_id == principal.org_id, condition))
    return found is not None


async def ensure_in_scope(session: AsyncSession, principal: Principal, lead_id: uuid.UUID) -> None:
    if not await lead_in_scope(session, principal, lead_id):
        raise NotFound("Lead not found.")
