"""Status labels: `GET` for everyone, `POST` for managers."""

from __future__ import annotations

from fastapi import APIRouter, status

from services.api.deps import ManagerDep, PrincipalDep, SessionDep
from services.api.leads.docs import problem_doc
from services.api.status_labels import service
from services.api.status_labels.schemas import StatusLabelCreate, StatusLabelOut

router = APIRouter(prefix="/v1/status-labels", tags=["status labels"])


@router.get("", response_model=list[StatusLabelOut])
async def list_labels(principal: PrincipalDep, session: SessionDep) -> list[StatusLabelOut]:
    return [StatusLabelOut.model_validate(row) for row in await service.list_labels(session, principal.org_id)]


@router.post("", response_model=StatusLabelOut, status_code=status.HTTP_201_CREATED, responses=problem_doc(409))
async def create_label(body: StatusLabelCreate, principal: ManagerDep, session: SessionDep) -> StatusLabelOut:
    """Name a status your way (e.g. "Hot prospect" → qualified); a status change may then carry its id."""
    return StatusLabelOut.model_validate(await service.create_label(session, principal.org_id, body))
