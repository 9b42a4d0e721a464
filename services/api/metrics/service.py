"""Source-to-lease metrics as plain SQL aggregates over leads and signal applications.

Definitions live in docs/metrics.md. Every query is one indexed range scan on (org_id, created_at) or
(org_id, applied_at), so a dashboard polling all day costs one aggregate per poll, and nothing per lead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api.leads.status import FUNNEL_RANK
from shared.enums import LeadStatus, ReviewStatus
from shared.models import Lead, Merge, ReviewItem, SignalApplication, User

RANK = FUNNEL_RANK
GROUPS = ("source", "property", "owner", "week", "none")


@dataclass(frozen=True)
class MetricsFilter:
    org_id: uuid.UUID
    start: datetime
    end: datetime
    property_id: uuid.UUID | None = None
    source: str | None = None
    # owners' scope (services.api.owners.scope.lead_scope): an agent's metrics count only its leads
    lead_scope: ColumnElement[bool] | None = None


def _scoped(query: Select[Any], scope: MetricsFilter) -> Select[Any]:
    query = query.where(Lead.org_id == scope.org_id, Lead.created_at >= scope.start, Lead.created_at < scope.end)
    if scope.lead_scope is not None:
        query = query.where(scope.lead_scope)
    if scope.property_id is not None:
        query = query.where(Lead.property_id == scope.property_id)
    if scope.source is not None:
        query = query.where(Lead.source == scope.source)
    return query


def _group_column(group_by: str) -> Any:
    if group_by == "source":
        return func.coalesce(Lead.source, "unknown")
    if group_by == "property":
        return func.coalesce(cast(Lead.property_id, Text), "none")
    if group_by == "owner":
        return func.coalesce(cast(Lead.owner_id, Text), "unassigned")
    if group_by == "week":
        return func.to_char(func.date_trunc("week", Lead.created_at), 'IYYY-"W"IW')
    return literal_column("'all'")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def funnel(session: AsyncSession, scope: MetricsFilter, group_by: str) -> list[dict[str, Any]]:
    """Leads created in the window and how far they ever got: the source-to-lease view."""
    key = _group_column(group_by).label("key")
    reached = Lead.reached_rank
    query = _scoped(
        select(
            key,
            func.count().label("leads"),
            func.count().filter(reached >= RANK[LeadStatus.contacted]).label("contacted"),
            func.count().filter(reached >= RANK[LeadStatus.tour_requested]).label("tour_requested"),
            func.count().filter(reached >= RANK[LeadStatus.tour_booked]).label("tour_booked"),
            func.count().filter(reached >= RANK[LeadStatus.toured]).label("toured"),
            func.count().filter(reached >= RANK[LeadStatus.application_started]).label("applied"),
            func.count().filter(reached >= RANK[LeadStatus.leased]).label("leased"),
            func.count().filter(Lead.status == LeadStatus.lost).label("lost"),
            func.count().filter(Lead.owner_id.is_(None)).label("no_owner"),
        ),
        scope,
    )
    if group_by != "none":
        query = query.group_by(key)
    rows = []
    ordered = query if group_by == "none" else query.order_by(func.count().desc(), key)
    for row in await session.execute(ordered):
        item = dict(row._mapping)
        item["lead_to_tour_rate"] = _rate(item["toured"], item["leads"])
        item["tour_to_application_rate"] = _rate(item["applied"], item["toured"])
        item["application_to_lease_rate"] = _rate(item["leased"], item["applied"])
        item["lead_to_lease_rate"] = _rate(item["leased"], item["leads"])
        rows.append(item)
    return rows


async def speed_to_lead(session: AsyncSession, scope: MetricsFilter, group_by: str) -> list[dict[str, Any]]:
    """Time from a lead's creation to the first response a person or automation sent."""
    key = _group_column(group_by).label("key")
    seconds = Lead.first_response_seconds
    query = _scoped(
        select(
            key,
            func.count().label("leads"),
            func.count(seconds).label("responded"),
            func.percentile_cont(0.5).within_group(seconds).label("median_seconds"),
            func.percentile_cont(0.9).within_group(seconds).label("p90_seconds"),
            func.count().filter(seconds <= 300).label("within_5_minutes"),
            func.count()
            .filter(seconds.is_(None), Lead.status.notin_([LeadStatus.lost, LeadStatus.leased]))
            .label("awaiting_response"),
        ),
        scope,
    )
    if group_by != "none":
        query = query.group_by(key).order_by(key)
    rows = []
    for row in await session.execute(query):
        item = dict(row._mapping)
        for name in ("median_seconds", "p90_seconds"):
            item[name] = round(float(item[name]), 1) if item[name] is not None else None
        item["within_5_minutes_rate"] = _rate(item["within_5_minutes"], item["leads"])
        rows.append(item)
    return rows


async def identity(session: AsyncSession, scope: MetricsFilter) -> dict[str, Any]:
    """Signals that landed on a renter we already knew (duplicates prevented), merges and the review queue."""
    applied = await session.execute(
        select(
            func.count().label("signals"),
            func.count().filter(SignalApplication.contact_created.is_(False)).label("duplicates_prevented"),
            func.count().filter(SignalApplication.contact_created.is_(True)).label("contacts_created"),
            func.count().filter(SignalApplication.created.is_(True)).label("leads_created"),
        ).where(
            SignalApplication.org_id == scope.org_id,
            SignalApplication.applied_at >= scope.start,
            SignalApplication.applied_at < scope.end,
        )
    )
    result = dict(applied.one()._mapping)
    result["merges"] = int(
        await session.scalar(
            select(func.count()).where(
                Merge.org_id == scope.org_id,
                Merge.created_at >= scope.start,
                Merge.created_at < scope.end,
                Merge.undone_at.is_(None),
            )
        )
        or 0
    )
    result["review_open"] = int(
        await session.scalar(
            select(func.count()).where(ReviewItem.org_id == scope.org_id, ReviewItem.status == ReviewStatus.open)
        )
        or 0
    )
    result["duplicate_rate"] = _rate(result["duplicates_prevented"], result["signals"])
    return result


async def owner_names(session: AsyncSession, org_id: uuid.UUID) -> dict[str, str]:
    rows = await session.execute(select(User.id, User.name).where(User.org_id == org_id))
    return {str(user_id): name for user_id, name in rows}
