"""Owners endpoints: people, teams, assignment strategies, offers, claims and collaborators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from services.api.deps import ManagerDep, PrincipalDep, SessionDep, StateDep
from services.api.leads.deps import LeadDep
from services.api.leads.docs import problem_doc
from services.api.owners import offers, service
from services.api.owners.assignment import claim_lead, taken_conflict
from services.api.owners.schemas import (
    AssignmentIn,
    AssignmentOut,
    ClaimOut,
    CollaboratorsIn,
    CollaboratorsOut,
    DeclineIn,
    OfferOut,
    OfferPage,
    OwnersSettings,
    ReassignOut,
    TeamIn,
    TeamOut,
    UserOut,
    UserUpdate,
)
from shared import clock
from shared.enums import Role
from shared.errors import NotFound, ValidationFailed
from shared.models import Lead, LeadOffer, Organization, PropertyTeamMember
from shared.service_token import resolve_secret_key

router = APIRouter(tags=["owners"])


@router.get("/v1/users", response_model=list[UserOut])
async def list_users(principal: PrincipalDep, session: SessionDep) -> list[UserOut]:
    """Everyone of the organization with availability now (available, away, inactive) and team seats."""
    return await service.list_users(session, principal.org_id, clock.now())


@router.patch("/v1/users/{user_id}", response_model=UserOut, responses=problem_doc(409))
async def update_user(user_id: uuid.UUID, body: UserUpdate, principal: PrincipalDep, session: SessionDep) -> UserOut:
    """Name, email, mobile phone, role, `active`, `away_until`. No hard delete: `active: false` keeps the
    user on history and reassigns its open leads through each property's strategy."""
    now = clock.now()
    user, _ = await service.update_user(session, principal, user_id, body, now)
    return service.user_out(user, now)


@router.post("/v1/users/{user_id}/reassign", response_model=ReassignOut)
async def reassign_user(user_id: uuid.UUID, principal: ManagerDep, session: SessionDep) -> ReassignOut:
    """Move a leaving agent's open leads (and pending offers) through each property's strategy."""
    return ReassignOut(**await service.reassign(session, principal, user_id, clock.now()))


@router.get("/v1/properties/{property_id}/team", response_model=TeamOut)
async def get_team(property_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> TeamOut:
    return await service.get_team(session, principal.org_id, property_id, clock.now())


@router.put("/v1/properties/{property_id}/team", response_model=TeamOut)
async def put_team(property_id: uuid.UUID, body: TeamIn, principal: ManagerDep, session: SessionDep) -> TeamOut:
    """Replace the property's leasing team: weights 1–10, working hours in the property's timezone."""
    return await service.put_team(session, principal.org_id, property_id, body, clock.now())


@router.get("/v1/properties/{property_id}/assignment", response_model=AssignmentOut)
async def get_assignment(property_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> AssignmentOut:
    return await service.get_assignment(session, principal.org_id, property_id)


@router.put("/v1/properties/{property_id}/assignment", response_model=AssignmentOut)
async def put_assignment(
    property_id: uuid.UUID, body: AssignmentIn, principal: ManagerDep, session: SessionDep
) -> AssignmentOut:
    """The property's strategy: round_robin, renter_choice, pool or fixed, offers and SLA."""
    return await service.put_assignment(session, principal.org_id, property_id, body, clock.now())


@router.get("/v1/assignment/default", response_model=AssignmentOut)
async def get_default_assignment(principal: PrincipalDep, session: SessionDep) -> AssignmentOut:
    return await service.get_assignment(session, principal.org_id, None)


@router.put("/v1/assignment/default", response_model=AssignmentOut)
async def put_default_assignment(body: AssignmentIn, principal: ManagerDep, session: SessionDep) -> AssignmentOut:
    """The organization's default strategy, for properties without their own."""
    return await service.put_assignment(session, principal.org_id, None, body, clock.now())


@router.get("/v1/owners/settings", response_model=OwnersSettings)
async def get_owner_settings(principal: PrincipalDep, session: SessionDep) -> OwnersSettings:
    return await service.get_settings(session, principal.org_id)


@router.patch("/v1/owners/settings", response_model=OwnersSettings)
async def patch_owner_settings(body: OwnersSettings, principal: ManagerDep, session: SessionDep) -> OwnersSettings:
    """`agents_see_all` widens an agent's scope to every lead; `agents_can_reassign` lets agents change owners."""
    return await service.patch_settings(session, principal.org_id, body)


@router.get("/v1/offers", response_model=OfferPage)
async def list_offers(
    principal: PrincipalDep,
    session: SessionDep,
    state: StateDep,
    mine: Annotated[bool, Query(description="only offers made to the key's user (always so for agents)")] = False,
    status: Annotated[
        str | None, Query(description="pending (default), accepted, declined, expired, canceled, all")
    ] = "pending",
    lead_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OfferPage:
    query = select(LeadOffer).where(LeadOffer.org_id == principal.org_id)
    if mine or principal.role == Role.agent:
        if principal.user_id is None:
            raise ValidationFailed("This API key has no user.", errors=[{"field": "query.mine", "message": "no user"}])
        query = query.where(LeadOffer.user_id == principal.user_id)
    if status and status != "all":
        query = query.where(LeadOffer.status == status)
    if lead_id is not None:
        query = query.where(LeadOffer.lead_id == lead_id)
    rows = await session.scalars(query.order_by(LeadOffer.offered_at.desc(), LeadOffer.id).limit(limit))
    key = resolve_secret_key(state.settings)
    base = (state.settings.public_url or "").rstrip("/")
    items = []
    for offer in rows:
        out = OfferOut.model_validate(offer, from_attributes=True)
        if offer.status == "pending" and offer.user_id == principal.user_id:
            out.link = f"{base}/o/{offers.offer_token(key, offer)}"
        items.append(out)
    return OfferPage(items=items)


@router.post("/v1/offers/{offer_id}/accept", response_model=OfferOut, responses=problem_doc(409))
async def accept_offer(offer_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> OfferOut:
    """The lead becomes yours. An expired or taken offer is a 409 that says who has the lead."""
    lead, offer = await offers.load_offer_for(session, principal, principal.org_id, offer_id)
    await offers.accept(session, lead, offer, clock.now())
    await session.flush()
    return OfferOut.model_validate(offer, from_attributes=True)


@router.post("/v1/offers/{offer_id}/decline", response_model=OfferOut, responses=problem_doc(409))
async def decline_offer(
    offer_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, body: DeclineIn | None = None
) -> OfferOut:
    """The lead is offered to the next agent; when everyone declined it goes to the pool and managers are told."""
    lead, offer = await offers.load_offer_for(session, principal, principal.org_id, offer_id)
    await offers.decline(session, lead, offer, clock.now(), body.reason if body else None)
    await session.flush()
    return OfferOut.model_validate(offer, from_attributes=True)


@router.post("/v1/leads/{lead_id}/claim", response_model=ClaimOut, responses=problem_doc(409))
async def claim(lead_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ClaimOut:
    """Take an unowned lead from the pool: first claim wins, later ones get 409 naming the owner."""
    if principal.user_id is None:
        raise ValidationFailed(
            "This API key has no user to own the lead.",
            errors=[{"field": "header.Authorization", "message": "a key without a user"}],
        )
    lead = await session.scalar(select(Lead).where(Lead.id == lead_id, Lead.org_id == principal.org_id))
    if lead is None or not await _may_claim(session, principal, lead):
        raise NotFound("Lead not found.")
    if lead.owner_id is not None and lead.owner_id != principal.user_id:
        raise await taken_conflict(session, lead.owner_id, "This lead is already owned")
    await claim_lead(session, lead, principal.user_id, clock.now())
    return ClaimOut(lead_id=lead.id, owner_id=principal.user_id)


async def _may_claim(session: SessionDep, principal: PrincipalDep, lead: Lead) -> bool:
    """Managers and admins anywhere; agents at their properties (or anywhere with agents_see_all)."""
    if principal.role != Role.agent:
        return True
    if await session.scalar(select(Organization.agents_see_all).where(Organization.id == principal.org_id)):
        return True
    seat = await session.scalar(
        select(PropertyTeamMember.id).where(
            PropertyTeamMember.user_id == principal.user_id, PropertyTeamMember.property_id == lead.property_id
        )
    )
    return seat is not None or lead.owner_id == principal.user_id


@router.get("/v1/leads/{lead_id}/collaborators", response_model=CollaboratorsOut)
async def get_collaborators(lead: LeadDep, session: SessionDep) -> CollaboratorsOut:
    return CollaboratorsOut(lead_id=lead.id, user_ids=await service.collaborators(session, lead))


@router.put("/v1/leads/{lead_id}/collaborators", response_model=CollaboratorsOut)
async def put_collaborators(
    lead: LeadDep, body: CollaboratorsIn, principal: PrincipalDep, session: SessionDep
) -> CollaboratorsOut:
    """Lead users besides the owner: they see and work the lead (the owner stays the one accountable)."""
    user_ids = await service.put_collaborators(session, principal, lead, body.user_ids, clock.now())
    return CollaboratorsOut(lead_id=lead.id, user_ids=user_ids)
