"""Metrics for ops dashboards: ETag on every answer, so a poller that saw it gets a 304."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from services.api.deps import PrincipalDep, SessionDep
from services.api.metrics import service
from services.api.owners.scope import lead_scope
from services.api.types import IsoDateTime
from shared import clock
from shared.errors import ValidationFailed

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])

GroupBy = Literal["source", "property", "owner", "week", "none"]
MAX_WINDOW = timedelta(days=400)


class MetricsAnswer(BaseModel):
    start: datetime
    end: datetime
    group_by: str | None = None
    rows: list[dict[str, Any]] | None = None
    totals: dict[str, Any] | None = None


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or clock.now()
    start = start or end - timedelta(days=30)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    if start >= end:
        raise ValidationFailed("`from` must be before `to`.", errors=[{"field": "query.from", "message": "after `to`"}])
    if end - start > MAX_WINDOW:
        raise ValidationFailed(
            "The window is at most 400 days.", errors=[{"field": "query.from", "message": "window too long"}]
        )
    return start, end


def _answer(request: Request, payload: MetricsAnswer) -> Response:
    body = payload.model_dump_json().encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=30"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


FromQuery = Annotated[IsoDateTime | None, Query(alias="from", description="inclusive; default 30 days before `to`")]
ToQuery = Annotated[IsoDateTime | None, Query(alias="to", description="exclusive; default now")]


async def metrics_scope(
    principal: PrincipalDep,
    session: SessionDep,
    start: FromQuery = None,
    end: ToQuery = None,
    property_id: uuid.UUID | None = None,
    source: str | None = None,
) -> service.MetricsFilter:
    window = _window(start, end)
    return service.MetricsFilter(
        principal.org_id,
        *window,
        property_id=property_id,
        source=source,
        lead_scope=await lead_scope(session, principal),
    )


ScopeDep = Annotated[service.MetricsFilter, Depends(metrics_scope)]


@router.get("/funnel", response_model=MetricsAnswer, responses={304: {"description": "unchanged since ETag"}})
async def funnel(
    request: Request, principal: PrincipalDep, session: SessionDep, scope: ScopeDep, group_by: GroupBy = "source"
) -> Response:
    """Leads created in the window by group, and how many ever reached contact, tour, application, lease."""
    rows = await service.funnel(session, scope, group_by)
    if group_by == "owner":
        names = await service.owner_names(session, principal.org_id)
        for row in rows:
            row["owner_name"] = names.get(row["key"])
    totals = _sum(
        rows, ("leads", "contacted", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost", "no_owner")
    )
    return _answer(
        request, MetricsAnswer(start=scope.start, end=scope.end, group_by=group_by, rows=rows, totals=totals)
    )


@router.get("/speed-to-lead", response_model=MetricsAnswer, responses={304: {"description": "unchanged since ETag"}})
async def speed_to_lead(request: Request, session: SessionDep, scope: ScopeDep, group_by: GroupBy = "none") -> Response:
    """Median and p90 seconds from lead creation to the first response, and the share answered within 5 minutes."""
    rows = await service.speed_to_lead(session, scope, group_by)
    return _answer(request, MetricsAnswer(start=scope.start, end=scope.end, group_by=group_by, rows=rows))


@router.get("/identity", response_model=MetricsAnswer, responses={304: {"description": "unchanged since ETag"}})
async def identity(
    request: Request, principal: PrincipalDep, session: SessionDep, start: FromQuery = None, end: ToQuery = None
) -> Response:
    """Duplicates prevented (signals that landed on a known renter), contacts created, merges, open reviews."""
    window = _window(start, end)
    totals = await service.identity(session, service.MetricsFilter(principal.org_id, *window))
    return _answer(request, MetricsAnswer(start=window[0], end=window[1], totals=totals))


def _sum(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: sum(int(row[name]) for row in rows) for name in names}
