"""Automation endpoints: the rules (read, replace, dry run) and, per lead, the next action and the log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from services.api.automation import log, service
from services.api.automation.schemas import (
    LogEntryOut,
    LogPage,
    NextActionOut,
    RuleSetDocument,
    RuleSetOut,
    RuleTestRequest,
    RuleTestResult,
)
from services.api.deps import ManagerDep, PrincipalDep, SessionDep
from services.api.leads.deps import LeadDep, LockedLeadDep
from services.api.owners.scope import ensure_in_scope
from services.api.types import IsoDateTime

router = APIRouter(prefix="/v1/automation", tags=["automation"])
lead_router = APIRouter(prefix="/v1/leads", tags=["automation"])


@router.get("/rules", response_model=RuleSetOut)
async def get_rules(
    principal: PrincipalDep,
    session: SessionDep,
    property_id: Annotated[
        uuid.UUID | None, Query(description="a property's overrides; none: the organization")
    ] = None,
    version: Annotated[int | None, Query(ge=1, description="an earlier saved version")] = None,
) -> RuleSetOut:
    """The stored rules of a scope, the effective rules (defaults ← organization ← property) and all versions."""
    return await service.get_rules(session, principal.org_id, property_id, version)


@router.put("/rules", response_model=RuleSetOut)
async def put_rules(
    body: RuleSetDocument,
    principal: ManagerDep,
    session: SessionDep,
    property_id: Annotated[uuid.UUID | None, Query()] = None,
) -> RuleSetOut:
    """Save a new version of the scope's rules (rules by id replace the defaults'); earlier versions are kept."""
    return await service.put_rules(session, principal, property_id, body)


@router.post("/rules/test", response_model=RuleTestResult)
async def test_rules(body: RuleTestRequest, principal: PrincipalDep, session: SessionDep) -> RuleTestResult:
    """Dry run: what the rules would do for a sample event (on a given lead or a sample one). Changes nothing."""
    if body.lead_id is not None:
        await ensure_in_scope(session, principal, body.lead_id)  # another agent's lead: 404
    return await service.test_rules(session, principal, body)


@lead_router.get("/{lead_id}/next-action", response_model=NextActionOut)
async def next_action(lead: LeadDep, session: SessionDep) -> NextActionOut:
    """The lead's current next action, the rule and rule version that chose it, and its pending timed steps."""
    return await service.next_action(session, lead)


@lead_router.get("/{lead_id}/automation-log", response_model=LogPage)
async def automation_log(
    lead: LeadDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    before: IsoDateTime | None = None,
) -> LogPage:
    """Every rule evaluated for this lead, newest first: fired (with its decisions) or skipped and why."""
    entries = await log.lead_log(session, lead, limit, before)
    return LogPage(items=[LogEntryOut.model_validate(entry) for entry in entries])


@lead_router.post("/{lead_id}/takeover", response_model=NextActionOut)
async def take_over(lead: LockedLeadDep, principal: PrincipalDep, session: SessionDep) -> NextActionOut:
    """A person takes the conversation: automated messages and sequences pause until it is handed back."""
    return await service.take_over(session, principal, lead)


@lead_router.delete("/{lead_id}/takeover", response_model=NextActionOut)
async def release(lead: LockedLeadDep, principal: PrincipalDep, session: SessionDep) -> NextActionOut:
    """Hand the conversation back to automation (409 when it is paused for another reason)."""
    return await service.release(session, principal, lead)
