"""Metrics for ops dashboards: ETag on every answer, so a poller that saw it gets a 304 (also with the
default window, which ends at the next full hour and so stays the same for a whole hour)."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from services.api.auth.service import Principal
from services.api.deps import ManagerDep, PrincipalDep, SessionDep
from services.api.metrics import queries, service
from services.api.metrics.scope import LeadScope, lead_scope
from services.api.owners.scope import lead_scope as owners_lead_scope
from services.api.types import IsoDateTime
from shared import clock
from shared.errors import ValidationFailed

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])
sources_router = APIRouter(prefix="/v1/sources", tags=["metrics"])

GroupBy = Literal["source", "property", "owner", "week", "none"]
GroupByV2 = Literal["source", "property", "owner", "week", "month", "none"]
View = Literal["cohort", "activity"]
MAX_WINDOW = timedelta(days=400)
DEFAULT_DAYS = 30
CACHE_CONTROL = "private, max-age=30, must-revalidate"

# Bumped whenever a metric's definition (docs/metrics.md) changes; every answer carries its own.
VERSIONS: dict[str, int] = {
    "funnel": 2,
    "speed-to-lead": 1,
    "identity": 1,
    "response-time": 2,
    "attribution": 1,
    "health": 1,
}


class MetricsAnswer(BaseModel):
    metric: str | None = None
    version: int | None = None
    start: datetime
    end: datetime
    view: str | None = None
    group_by: str | None = None
    as_of: datetime | None = None
    rows: list[dict[str, Any]] | None = None
    totals: dict[str, Any] | None = None


def default_end(now: datetime) -> datetime:
    """The default window ends at the next full hour: a stable bucket a poller sees for the whole hour."""
    floor = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor + timedelta(hours=1)


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end is not None and end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    end = end or default_end(clock.now())
    start = start or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ValidationFailed("`from` must be before `to`.", errors=[{"field": "query.from", "message": "after `to`"}])
    if end - start > MAX_WINDOW:
        raise ValidationFailed(
            "The window is at most 400 days.", errors=[{"field": "query.from", "message": "window too long"}]
        )
    return start, end


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _answer(request: Request, payload: MetricsAnswer) -> Response:
    if payload.metric is not None:
        payload.version = VERSIONS[payload.metric]
    body = payload.model_dump_json().encode()
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Authorization"}
    match = request.headers.get("if-none-match")
    if match and (match.strip() == "*" or etag in [tag.strip().removeprefix("W/") for tag in match.split(",")]):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


FromQuery = Annotated[IsoDateTime | None, Query(alias="from", description="inclusive; default 30 days before `to`")]
ToQuery = Annotated[IsoDateTime | None, Query(alias="to", description="exclusive; default the next full hour")]
KindQuery = Annotated[str | None, Query(max_length=16, description="lead kind: tenant | owner")]


async def metrics_scope(
    principal: PrincipalDep,
    session: SessionDep,
    start: FromQuery = None,
    end: ToQuery = None,
    property_id: uuid.UUID | None = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
) -> service.MetricsFilter:
    window = _window(start, end)
    return service.MetricsFilter(
        principal.org_id,
        *window,
        property_id=property_id,
        source=source,
        lead_scope=await owners_lead_scope(session, principal),
    )


ScopeDep = Annotated[service.MetricsFilter, Depends(metrics_scope)]


async def v2_filter(
    principal: PrincipalDep,
    session: SessionDep,
    start: FromQuery = None,
    end: ToQuery = None,
    property_id: uuid.UUID | None = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
    kind: KindQuery = None,
) -> queries.Filter:
    scope = await lead_scope(session, principal)
    return make_filter(principal, *_window(start, end), scope, property_id=property_id, source=source, kind=kind)


def make_filter(
    principal: Principal,
    start: datetime,
    end: datetime,
    scope: LeadScope,
    *,
    property_id: uuid.UUID | None = None,
    source: str | None = None,
    kind: str | None = None,
) -> queries.Filter:
    return queries.Filter(
        principal.org_id,
        start,
        end,
        scope,
        property_id=property_id,
        source=source,
        kind=kind,
    )


FilterDep = Annotated[queries.Filter, Depends(v2_filter)]
UNCHANGED: dict[int | str, dict[str, Any]] = {304: {"description": "unchanged since ETag"}}


async def funnel_rows(
    session: Any, principal: Principal, f: queries.Filter, view: str, group_by: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if view == "activity":
        rows = await queries.funnel_activity(session, f, group_by)
        names: tuple[str, ...] = ("leads", *queries.ACTIVITY_STAGES)
    else:
        rows = await queries.funnel_cohort(session, f, group_by)
        names = ("leads", *queries.RANKS, "lost", "no_owner")
    if group_by == "owner":
        owners = await service.owner_names(session, principal.org_id)
        for row in rows:
            row["owner_name"] = owners.get(row["key"])
    totals = queries._funnel_rates(_sum(rows, names))
    return rows, totals


@router.get("/funnel", response_model=MetricsAnswer, responses=UNCHANGED)
async def funnel(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    f: FilterDep,
    group_by: GroupByV2 = "source",
    view: View = "cohort",
) -> Response:
    """Cohort: leads created in the window and how far they ever got. Activity: stage entries that happened in
    the window. Week and month are local to each lead's property."""
    rows, totals = await funnel_rows(session, principal, f, view, group_by)
    return _answer(
        request,
        MetricsAnswer(
            metric="funnel", start=f.start, end=f.end, view=view, group_by=group_by, rows=rows, totals=totals
        ),
    )


@router.get("/speed-to-lead", response_model=MetricsAnswer, responses=UNCHANGED)
async def speed_to_lead(request: Request, session: SessionDep, scope: ScopeDep, group_by: GroupBy = "none") -> Response:
    """Median and p90 seconds from lead creation to the first response, and the share answered within 5 minutes."""
    rows = await service.speed_to_lead(session, scope, group_by)
    return _answer(
        request, MetricsAnswer(metric="speed-to-lead", start=scope.start, end=scope.end, group_by=group_by, rows=rows)
    )


@router.get("/response-time", response_model=MetricsAnswer, responses=UNCHANGED)
async def response_time(
    request: Request,
    session: SessionDep,
    f: FilterDep,
    group_by: GroupByV2 = "none",
    working_hours: Annotated[bool, Query(description="count only the property's working hours")] = False,
) -> Response:
    """First automated vs first human reply: median, p90, share within 5 minutes and within 1 hour."""
    rows = await queries.response_time(session, f, group_by, working_hours)
    return _answer(
        request,
        MetricsAnswer(
            metric="response-time",
            start=f.start,
            end=f.end,
            view="working_hours" if working_hours else "elapsed",
            group_by=group_by,
            rows=rows,
        ),
    )


@router.get("/attribution", response_model=MetricsAnswer, responses=UNCHANGED)
async def attribution(request: Request, session: SessionDep, f: FilterDep) -> Response:
    """Tours, applications, leases by first-touch and last-touch source; spend and cost per lead/tour/lease."""
    rows = await queries.attribution(session, f)
    names = (
        tuple(name for name in rows[0] if name.endswith(("leads", "tours", "applications", "leases"))) if rows else ()
    )
    totals = _sum(rows, names)
    spent = [row["spend"] for row in rows if row["spend"] is not None]
    totals["spend"] = round(sum(spent), 2) if spent else None
    return _answer(
        request,
        MetricsAnswer(metric="attribution", start=f.start, end=f.end, group_by="source", rows=rows, totals=totals),
    )


@router.get("/health", response_model=MetricsAnswer, responses=UNCHANGED)
async def health(request: Request, session: SessionDep, f: FilterDep) -> Response:
    """What is slipping: leads without owner or next action, overdue, SLA breaches, offers, reviews, intake."""
    as_of = queries.floor_minute(clock.now())
    totals = await queries.health(session, f, as_of)
    return _answer(request, MetricsAnswer(metric="health", start=f.start, end=f.end, as_of=as_of, totals=totals))


@router.get("/identity", response_model=MetricsAnswer, responses=UNCHANGED)
async def identity(
    request: Request, principal: PrincipalDep, session: SessionDep, start: FromQuery = None, end: ToQuery = None
) -> Response:
    """Duplicates prevented (signals that landed on a known renter), contacts created, merges, open reviews."""
    window = _window(start, end)
    totals = await service.identity(session, service.MetricsFilter(principal.org_id, *window))
    return _answer(request, MetricsAnswer(metric="identity", start=window[0], end=window[1], totals=totals))


def _sum(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: sum(int(row[name]) for row in rows) for name in names}


# -- spend ---------------------------------------------------------------------------------------------------

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class SpendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="calendar month, YYYY-MM", examples=["2026-10"])
    amount: float = Field(ge=0, le=1e10, strict=True, description="spend in the currency's units, e.g. 1250.00")
    currency: str = Field("USD", pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code")


class SpendOut(BaseModel):
    source: str
    month: str
    amount: float
    currency: str


SourcePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]  # no control chars


@sources_router.put("/{source}/spend", response_model=SpendOut)
async def put_spend(source: SourcePath, body: SpendIn, principal: ManagerDep, session: SessionDep) -> SpendOut:
    """Record (or replace) the spend on a source for one month; attribution divides it by leads, tours, leases."""
    if not MONTH.match(body.month):
        raise ValidationFailed("month is YYYY-MM.", errors=[{"field": "body.month", "message": "expected YYYY-MM"}])
    month = date(int(body.month[:4]), int(body.month[5:7]), 1)
    cents = round(body.amount * 100)
    await session.execute(
        text(
            "INSERT INTO source_spend (id, org_id, source, month, amount_cents, currency, created_at, updated_at) "
            "VALUES (:id, :org, :source, :month, :cents, :currency, :now, :now) "
            "ON CONFLICT (org_id, source, month) DO UPDATE SET amount_cents = EXCLUDED.amount_cents, "
            "currency = EXCLUDED.currency, updated_at = EXCLUDED.updated_at"
        ),
        {
            "id": uuid.uuid4(),
            "org": principal.org_id,
            "source": source,
            "month": month,
            "cents": cents,
            "currency": body.currency.upper(),
            "now": clock.now(),
        },
    )
    return SpendOut(source=source, month=body.month, amount=cents / 100, currency=body.currency.upper())


@sources_router.get("/{source}/spend", response_model=list[SpendOut])
async def list_spend(source: SourcePath, principal: PrincipalDep, session: SessionDep) -> list[SpendOut]:
    """Recorded spend on a source, month by month."""
    rows = await session.execute(
        text(
            "SELECT month, amount_cents, currency FROM source_spend WHERE org_id = :org AND source = :source "
            "ORDER BY month"
        ),
        {"org": principal.org_id, "source": source},
    )
    return [
        SpendOut(source=source, month=month.strftime("%Y-%m"), amount=cents / 100, currency=currency)
        for month, cents, currency in rows
    ]
