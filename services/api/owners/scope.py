"""Which leads a caller may see and act on: the one rule for lists, detail, timeline, export, metrics, writes.

Admins and managers: every lead of the organization. Agents: the leads they own, the leads they collaborate
on, and the unowned leads (the pool) of the properties whose team they are on; the organization setting
`agents_see_all` gives agents everything. Outside the scope is a 404, exactly like another organization's lead.
Rows about a lead (an inbound delivery, a review item) follow their lead; rows about a person (a contact, its
consent, a merge) are in scope when one of that person's leads is.
"""

from __future__ import annotations

import uuid

from sqlalchemy import BindParameter, Select, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from services.api.auth.service import Principal
from shared.enums import Role
from shared.errors import Conflict, NotFound
from shared.models import Lead, LeadCollaborator, Organization, PropertyTeamMember


def scope_parts(principal: Principal, agents_see_all: bool) -> tuple[ColumnElement[bool], ...] | None:
    """The caller's leads as the sets whose union they are (an agent's three: `agent_scope_parts`), or None when
    it sees the whole organization."""
    if principal.role in (Role.admin, Role.manager) or agents_see_all:
        return None
    if principal.user_id is None:
        return (false(),)  # an agent key that belongs to nobody owns nothing
    return agent_scope_parts(principal.user_id)


def scope_condition(principal: Principal, agents_see_all: bool) -> ColumnElement[bool] | None:
    """A WHERE condition on `leads` for this caller, or None when it sees the whole organization."""
    parts = scope_parts(principal, agents_see_all)
    return None if parts is None else or_(*parts)


COLLABORATES, POOL = 1, 2  # their places among an agent's sets


class AgentScope(tuple[ColumnElement[bool], ...]):
    """An agent's three sets as conditions (owned, collaborated on, the pool), and whose they are: a list reads
    the collaborations and the pool from the agent's own rows (`queries._driven_page`)."""

    user_id: uuid.UUID | BindParameter[uuid.UUID]

    def __new__(
        cls, parts: tuple[ColumnElement[bool], ...], user_id: uuid.UUID | BindParameter[uuid.UUID]
    ) -> AgentScope:
        scope = super().__new__(cls, parts)
        scope.user_id = user_id
        return scope


def team_properties(user_id: uuid.UUID | BindParameter[uuid.UUID]) -> Select[uuid.UUID]:
    """The properties whose team the user is on."""
    return select(PropertyTeamMember.property_id).where(PropertyTeamMember.user_id == user_id)


def collaborations(user_id: uuid.UUID | BindParameter[uuid.UUID]) -> Select[uuid.UUID]:
    """The leads the user collaborates on."""
    return select(LeadCollaborator.lead_id).where(LeadCollaborator.user_id == user_id)


def agent_scope_parts(user_id: uuid.UUID | BindParameter[uuid.UUID]) -> AgentScope:
    """An agent's leads as the three sets whose union they are: owned, collaborated on, and unowned at a property
    whose team the agent is on. Each is answered by its own index (owner, collaborators, the pool by property),
    so a list walks each newest first and merges them (`queries.list_statement`): one condition joined by OR
    could only walk every lead of the organization newest first and test each (2.5 s at 1 M leads for an agent
    who owns nothing yet). `user_id` may be a parameter (services/api/leads/fast.py compiles these once)."""
    owned = Lead.owner_id == user_id
    collaborates = Lead.id.in_(collaborations(user_id))
    pool = Lead.owner_id.is_(None) & Lead.property_id.in_(team_properties(user_id))
    return AgentScope((owned, collaborates, pool), user_id)


def agent_scope(user_id: uuid.UUID | BindParameter[uuid.UUID]) -> ColumnElement[bool]:
    """An agent's leads, as one condition (`agent_scope_parts` joined by OR)."""
    return or_(*agent_scope_parts(user_id))


async def lead_scope_parts(session: AsyncSession, principal: Principal) -> tuple[ColumnElement[bool], ...] | None:
    """`scope_parts` with the organization's setting read (once per request): for a list, which walks each."""
    if principal.role in (Role.admin, Role.manager):
        return None
    see_all = await session.scalar(select(Organization.agents_see_all).where(Organization.id == principal.org_id))
    return scope_parts(principal, bool(see_all))


async def lead_scope(session: AsyncSession, principal: Principal) -> ColumnElement[bool] | None:
    """`scope_condition` with the organization's setting read: call this once per request."""
    parts = await lead_scope_parts(session, principal)
    return None if parts is None else or_(*parts)


async def lead_in_scope(session: AsyncSession, principal: Principal, lead_id: uuid.UUID) -> bool:
    condition = await lead_scope(session, principal)
    if condition is None:
        return True
    found = await session.scalar(select(Lead.id).where(Lead.id == lead_id, Lead.org_id == principal.org_id, condition))
    return found is not None


async def ensure_in_scope(session: AsyncSession, principal: Principal, lead_id: uuid.UUID) -> None:
    if not await lead_in_scope(session, principal, lead_id):
        raise NotFound("Lead not found.")


def lead_ids_in(org_id: uuid.UUID, condition: ColumnElement[bool]) -> Select[uuid.UUID]:
    """The ids of the leads in a scope, for `<row>.lead_id.in_(…)`."""
    return select(Lead.id).where(Lead.org_id == org_id, condition)


def contact_ids_in(org_id: uuid.UUID, condition: ColumnElement[bool]) -> Select[uuid.UUID]:
    """The people with at least one lead in a scope."""
    return select(Lead.contact_id).where(Lead.org_id == org_id, condition)


def about_lead_in_scope(
    org_id: uuid.UUID,
    condition: ColumnElement[bool] | None,
    lead_id: InstrumentedAttribute[uuid.UUID | None],
    contact_id: InstrumentedAttribute[uuid.UUID | None] | None = None,
) -> ColumnElement[bool] | None:
    """A condition on a row that names a lead (and, when it names none, a contact): None = no limit.

    A row with a lead follows that lead only, not the renter's other leads: a sensitive conversation on one
    agent's lead is not shown to the agent of the same renter's lead at another property."""
    if condition is None:
        return None
    by_lead = lead_id.in_(lead_ids_in(org_id, condition))
    if contact_id is None:
        return by_lead
    return by_lead | (lead_id.is_(None) & contact_id.in_(contact_ids_in(org_id, condition)))


async def ensure_contact_in_scope(session: AsyncSession, principal: Principal, contact_id: uuid.UUID) -> None:
    """A 404 unless one of the person's leads is in the caller's scope."""
    condition = await lead_scope(session, principal)
    if condition is None:
        return
    if await session.scalar(contact_ids_in(principal.org_id, condition).where(Lead.contact_id == contact_id)) is None:
        raise NotFound("Contact not found.")


async def ensure_reused_lead_in_scope(
    session: AsyncSession, principal: Principal, lead_id: uuid.UUID, field: str
) -> None:
    """Adding or inviting a renter whose open lead here is outside the caller's scope: a 409 and nothing written
    (else an agent could write to, and read back, another agent's lead by naming its renter's email)."""
    if not await lead_in_scope(session, principal, lead_id):
        raise Conflict(
            "This renter already has an open lead at this property, and it is not yours; ask a manager.",
            errors=[{"field": field, "message": "the renter's open lead here is another agent's"}],
        )
