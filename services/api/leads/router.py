"""Lead endpoints: list, detail, edit (If-Match), status moves and the timeline."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse

from services.api.deps import PrincipalDep, SessionDep, StateDep, read_only
from services.api.leads import create, export, json_out, service, timeline
from services.api.leads.create import OnDuplicate
from services.api.leads.deps import IfMatch, LockedLeadDep, check_if_match, etag
from services.api.leads.docs import problem_doc
from services.api.leads.queries import DEFAULT_PAGE, MAX_PAGE, LeadFilters, LeadSort
from services.api.leads.schemas import LeadCreate, LeadOut, LeadPage, LeadUpdate, StatusChange, TimelinePage
from services.api.owners.scope import lead_scope, lead_scope_parts
from services.api.types import IsoDateTime, uuid_or
from shared.enums import ContactKind, EventType, LeadStatus, Temperature
from shared.errors import ValidationFailed

router = APIRouter(prefix="/v1/leads", tags=["leads"])


async def lead_filters(  # async: a plain def dependency runs in the thread pool
    status: Annotated[list[LeadStatus] | None, Query(description="repeatable")] = None,
    temperature: Temperature | None = None,
    property_id: uuid.UUID | None = None,
    owner_id: Annotated[
        str | None, Query(description="a user id, or `none` for unassigned leads", pattern=uuid_or("none"))
    ] = None,
    source: str | None = None,
    kind: ContactKind | None = None,
    created_from: IsoDateTime | None = None,
    created_to: IsoDateTime | None = None,
    updated_from: IsoDateTime | None = None,
    updated_to: IsoDateTime | None = None,
    has_next_action_overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="name, email or phone (prefix)")] = None,
    sort: LeadSort = "-created_at",
) -> LeadFilters:
    if q is not None and "\x00" in q:
        # a search's patterns are written into the SQL (queries.search_condition), where a NUL cannot go; no
        # stored text holds one either
        raise ValidationFailed("q is not valid.", errors=[{"field": "query.q", "message": "contains a NUL character"}])
    owner: uuid.UUID | None = None
    if owner_id is not None and owner_id != "none":
        try:
            owner = uuid.UUID(owner_id)
        except ValueError as error:
            raise ValidationFailed(
                "owner_id is not valid.",
                errors=[{"field": "query.owner_id", "message": "a user id or `none`"}],
            ) from error
    return LeadFilters(
        status=[s.value for s in status] if status else None,
        temperature=temperature,
        property_id=property_id,
        owner_id=owner,
        unassigned=owner_id == "none",
        source=source,
        kind=kind,
        created_from=created_from,
        created_to=created_to,
        updated_from=updated_from,
        updated_to=updated_to,
        has_next_action_overdue=has_next_action_overdue,
        q=q,
        sort=sort,
    )


FiltersDep = Annotated[LeadFilters, Depends(lead_filters)]


@router.get("", response_model=LeadPage)
@read_only
async def list_leads(
    principal: PrincipalDep,
    session: SessionDep,
    filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: str | None = None,
) -> Response:
    scope = await lead_scope_parts(session, principal)
    rows, next_cursor = await service.list_lead_rows(session, principal.org_id, filters, limit, cursor, scope=scope)
    return json_out.page(map(json_out.lead_dict, rows), next_cursor)


@router.post("", response_model=LeadOut, status_code=201, responses=problem_doc(409))
async def create_lead(
    body: LeadCreate,
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    on_duplicate: Annotated[
        OnDuplicate, Query(description="`attach`: add the lead to the contact that owns the email/phone")
    ] = "reject",
) -> LeadOut:
    """Manual add. A known email or phone answers 409 with `existing_lead_id` / `existing_contact_id`."""
    lead, created = await create.create_lead(session, principal, body, on_duplicate)
    out = await service.get_lead_out(session, lead.org_id, lead.id)
    response.status_code = 201 if created else 200
    response.headers["ETag"] = etag(out.version)
    return out


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per lead, same order as the list"}},
)
async def export_leads(
    principal: PrincipalDep, state: StateDep, session: SessionDep, filters: FiltersDep
) -> StreamingResponse:
    """The lead list as CSV, streamed: same filters and sort as `GET /v1/leads`, no page size."""
    scope = await lead_scope(session, principal)
    return export.CsvStreamingResponse(
        export.stream_csv(state.engine, principal.org_id, filters, scope=scope),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="leads.csv"', "Cache-Control": "no-store"},
    )


@router.get("/{lead_id}", response_model=LeadOut)
@read_only
async def get_lead(lead_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Response:
    # one statement: the lead as the list shows it, within the caller's scope (else 404)
    scope = await lead_scope(session, principal)
    row = await service.get_lead_row(session, principal.org_id, lead_id, scope=scope)
    return json_out.json_response(json_out.lead_dict(row), headers={"ETag": etag(row["version"])})


@router.patch("/{lead_id}", response_model=LeadOut, responses=problem_doc(409, 412, 428))
async def update_lead(
    lead: LockedLeadDep,
    body: LeadUpdate,
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> LeadOut:
    check_if_match(lead, if_match, required=True)
    await service.update_lead(session, principal, lead, body)
    out = await service.get_lead_out(session, lead.org_id, lead.id)
    response.headers["ETag"] = etag(out.version)
    return out


@router.post("/{lead_id}/status", response_model=LeadOut, responses=problem_doc(409, 412))
async def change_status(
    lead: LockedLeadDep,
    body: StatusChange,
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> LeadOut:
    """Move the lead along the pipeline. 409 names the allowed targets; If-Match is optional here."""
    check_if_match(lead, if_match, required=False)
    await service.change_status(session, principal, lead, body)
    out = await service.get_lead_out(session, lead.org_id, lead.id)
    response.headers["ETag"] = etag(out.version)
    return out


@router.get("/{lead_id}/timeline", response_model=TimelinePage)
@read_only
async def get_timeline(
    lead_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    type: Annotated[list[EventType] | None, Query(description="repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = timeline.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response:
    types = [t.value for t in type or []]
    rows, next_cursor = await timeline.list_events(session, principal, lead_id, types, limit, cursor)
    return json_out.page(map(json_out.event_dict, rows), next_cursor)
