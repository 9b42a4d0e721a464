"""Status labels: `GET` for everyone, `POST` for managers."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from services.api.automation.schemas import ActionPlan
from services.api.deps import ManagerDep, PrincipalDep, SessionDep
from services.api.leads.docs import problem_doc
from services.api.status_labels import service
from services.api.status_labels.schemas import ActionPlanOut, StatusLabelCreate, StatusLabelOut

router = APIRouter(prefix="/v1/status-labels", tags=["status labels"])


@router.get("", response_model=list[StatusLabelOut])
async def list_labels(principal: PrincipalDep, session: SessionDep) -> list[StatusLabelOut]:
    return [StatusLabelOut.model_validate(row) for row in await service.list_labels(session, principal.org_id)]


@router.post("", response_model=StatusLabelOut, status_code=status.HTTP_201_CREATED, responses=problem_doc(409))
async def create_label(body: StatusLabelCreate, principal: ManagerDep, session: SessionDep) -> StatusLabelOut:
    """Name a status your way (e.g. "Hot prospect" → qualified); a status change may then carry its id."""
    return StatusLabelOut.model_validate(await service.create_label(session, principal.org_id, body))


@router.get("/{label_id}/action-plan", response_model=ActionPlanOut)
async def get_action_plan(label_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ActionPlanOut:
    """The label's action plan: a rule triggered by entering that label (null when it has none)."""
    return await service.get_action_plan(session, principal.org_id, label_id)


@router.put("/{label_id}/action-plan", response_model=ActionPlanOut)
async def put_action_plan(
    label_id: uuid.UUID, body: ActionPlan, principal: ManagerDep, session: SessionDep
) -> ActionPlanOut:
    """Attach (or replace) the label's action plan; every version is kept and named by the decisions it makes."""
    return await service.put_action_plan(session, principal, label_id, body)
