"""Work on leads: notes, call/meeting logs and invitations to apply."""

from __future__ import annotations

from fastapi import APIRouter, status

from services.api.deps import PrincipalDep, SessionDep
from services.api.leads import work
from services.api.leads.deps import LeadDep, LockedLeadDep
from services.api.leads.docs import problem_doc
from services.api.leads.schemas import TimelineEvent
from services.api.leads.work_schemas import ActivityCreate, InvitationRequest, InvitationResponse, NoteCreate

router = APIRouter(prefix="/v1/leads", tags=["leads"])


@router.post("/invitations", response_model=InvitationResponse, responses=problem_doc(409))
async def invite(body: InvitationRequest, principal: PrincipalDep, session: SessionDep) -> InvitationResponse:
    """Invite renters to apply: each email becomes (or reuses) its open lead; `invitation_sent` on each.
    An agent naming a renter whose open lead here is another agent's gets a 409 and nothing is sent."""
    return InvitationResponse(items=await work.invite(session, principal, body))


@router.post("/{lead_id}/notes", response_model=TimelineEvent, status_code=status.HTTP_201_CREATED)
async def add_note(lead: LeadDep, body: NoteCreate, principal: PrincipalDep, session: SessionDep) -> TimelineEvent:
    event = work.add_note(session, principal, lead, body)
    await session.flush()
    return TimelineEvent.model_validate(event)


@router.post("/{lead_id}/activities", response_model=TimelineEvent, status_code=status.HTTP_201_CREATED)
async def log_activity(
    lead: LockedLeadDep, body: ActivityCreate, principal: PrincipalDep, session: SessionDep
) -> TimelineEvent:
    """Log a call or meeting. An outbound call (or a meeting) counts as a response: new → contacted."""
    return TimelineEvent.model_validate(await work.log_activity(session, principal, lead, body))
