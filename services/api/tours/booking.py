"""Where a tour may go: reading naive times, checking hours/blackouts/team, choosing an agent, and turning the
database's exclusion-constraint refusal into a 409 that names the clash and the nearest free slots."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.tours import slots as slotting
from shared.enums import TourStatus, TourType
from shared.errors import Conflict, ValidationFailed
from shared.models import Property, Tour, TourBlackout
from shared.working_hours import zone

EXCLUSION_VIOLATION = "23P01"


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field.rsplit('.', 1)[-1]} is not valid.", errors=[{"field": field, "message": message}])


def read_time(value: datetime, prop: Property | None, field: str) -> datetime:
    """The one rule for times without an offset: wall-clock time in the property's timezone."""
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    if prop is None:
        raise invalid(field, "no UTC offset, and the lead has no property whose timezone would read it")
    tz = zone(prop.timezone)
    local = value.replace(tzinfo=tz)  # fold=0: a repeated (fall-back) hour means its first occurrence
    if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
        raise invalid(field, f"{value:%Y-%m-%d %H:%M} does not exist in {prop.timezone} (clocks jump forward)")
    return local.astimezone(UTC)


def local_iso(at: datetime, prop: Property | None) -> str | None:
    return at.astimezone(zone(prop.timezone)).isoformat() if prop is not None else None


@dataclass(slots=True)
class Placement:
    agent_id: uuid.UUID | None
    ends_at: datetime
    busy_until: datetime


def _slot_json(slot: slotting.Slot, prop: Property) -> dict[str, Any]:
    return {
        "starts_at": slot.starts_at.isoformat(),
        "starts_at_local": local_iso(slot.starts_at, prop),
        "ends_at": slot.ends_at.isoformat(),
        "agent_ids": [str(a) for a in slot.agent_ids],
    }


async def clash_of(
    session: AsyncSession,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    property_id: uuid.UUID | None,
    starts_at: datetime,
    busy_until: datetime,
    exclude: uuid.UUID | None,
) -> Tour | None:
    """The scheduled tour that the exclusion constraint would refuse this one for, if any."""
    query = select(Tour).where(
        Tour.org_id == org_id,
        Tour.status == TourStatus.scheduled,
        Tour.starts_at < busy_until,
        Tour.busy_until > starts_at,
    )
    if agent_id is not None:
        query = query.where(Tour.agent_id == agent_id)
    elif property_id is not None:
        query = query.where(
            Tour.agent_id.is_(None), Tour.tour_type == TourType.self_guided, Tour.property_id == property_id
        )
    else:
        return None
    if exclude is not None:
        query = query.where(Tour.id != exclude)
    return await session.scalar(query.order_by(Tour.starts_at).limit(1))


async def conflict(
    session: AsyncSession,
    prop: Property | None,
    clash: Tour | None,
    wanted: datetime,
    tour_type: TourType,
    agent_id: uuid.UUID | None,
    now: datetime,
    field: str,
) -> Conflict:
    nearest = await slotting.nearest_slots(session, prop, wanted, tour_type, now, agent_id=agent_id) if prop else []
    clash_json = None
    message = "the agent is already booked then"
    if clash is not None:
        clash_json = {
            "tour_id": str(clash.id),
            "agent_id": str(clash.agent_id) if clash.agent_id else None,
            "starts_at": clash.starts_at.isoformat(),
            "busy_until": clash.busy_until.isoformat(),
        }
        message = f"clashes with tour {clash.id} ({clash.starts_at:%Y-%m-%d %H:%M} UTC until {clash.busy_until:%H:%M})"
    return Conflict(
        "That time is already taken.",
        errors=[{"field": field, "message": message}],
        clash=clash_json,
        nearest_slots=[_slot_json(slot, prop) for slot in nearest] if prop else [],
    )


async def place(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    prop: Property | None,
    starts_at: datetime,
    tour_type: TourType,
    agent_id: uuid.UUID | None,
    preferred: uuid.UUID | None,
    now: datetime,
    field: str,
    agent_field: str,
    exclude: uuid.UUID | None = None,
) -> Placement:
    """Validate the time against the property's rules and pick the agent. Without a property (or a tour team)
    only the agent's other tours count, as before tour teams existed."""
    if prop is None:
        rules = None
    else:
        rules = await slotting.load_rules(session, prop)
        if tour_type.value not in rules.types:
            raise invalid("body.tour_type", f"this property offers {', '.join(rules.types)}")
    length = rules.length if rules else timedelta(minutes=30)
    buffer = rules.buffer if rules else timedelta(0)
    ends_at = starts_at + length
    if prop is not None and rules is not None:
        blackout = await session.scalar(
            select(TourBlackout).where(
                TourBlackout.org_id == org_id,
                TourBlackout.property_id == prop.id,
                TourBlackout.starts_at < ends_at,
                TourBlackout.ends_at > starts_at,
            )
        )
        if blackout is not None:
            raise invalid(field, f"the property shows no tours then ({blackout.reason or 'blackout'})")
        tz = zone(prop.timezone)
        if tour_type == TourType.self_guided:
            if agent_id is not None:
                raise invalid(agent_field, "self-guided tours have no agent")
            if not slotting.fits_hours(rules.self_guided_hours, starts_at, tz, rules):
                raise invalid(field, "outside the property's self-guided tour hours")
            return Placement(None, ends_at, ends_at + buffer)
        agents = await slotting.team(session, prop, rules)
        if agents:
            return await _team_placement(
                session,
                org_id,
                prop,
                rules,
                agents,
                starts_at,
                tour_type,
                agent_id,
                preferred,
                now,
                field,
                agent_field,
                exclude,
            )
    if tour_type == TourType.self_guided:
        return Placement(None, ends_at, ends_at + buffer)
    return Placement(agent_id or preferred, ends_at, ends_at + buffer)


async def _team_placement(
    session: AsyncSession,
    org_id: uuid.UUID,
    prop: Property,
    rules: slotting.Rules,
    agents: list[slotting.Agent],
    starts_at: datetime,
    tour_type: TourType,
    agent_id: uuid.UUID | None,
    preferred: uuid.UUID | None,
    now: datetime,
    field: str,
    agent_field: str,
    exclude: uuid.UUID | None,
) -> Placement:
    tz = zone(prop.timezone)
    ends_at = starts_at + rules.length
    busy_until = ends_at + rules.buffer
    if agent_id is not None:
        agent = next((a for a in agents if a.user_id == agent_id), None)
        if agent is None:
            raise invalid(agent_field, "not on this property's tour team")
        if not agent.hours.is_open(starts_at, tz) or not slotting.fits_hours(agent.hours, starts_at, tz, rules):
            raise invalid(field, "outside the agent's working hours")
        if agent.away_until is not None and agent.away_until > starts_at:
            raise invalid(agent_field, "the agent is away then")
        return Placement(agent_id, ends_at, busy_until)
    working = [
        a
        for a in agents
        if slotting.fits_hours(a.hours, starts_at, tz, rules) and not (a.away_until and a.away_until > starts_at)
    ]
    if not working:
        raise invalid(field, "outside the working hours of every agent on this property's tour team")
    free = [
        a
        for a in working
        if await clash_of(session, org_id, a.user_id, prop.id, starts_at, busy_until, exclude) is None
    ]
    if not free:
        clash = await clash_of(session, org_id, working[0].user_id, prop.id, starts_at, busy_until, exclude)
        raise await conflict(session, prop, clash, starts_at, tour_type, None, now, field)
    owner = next((a for a in free if a.user_id == preferred), None)
    if owner is not None:
        return Placement(owner.user_id, ends_at, busy_until)
    day_start, day_end = slotting.day_bounds(starts_at.astimezone(tz).date(), tz)
    counts = dict(
        (
            await session.execute(
                select(Tour.agent_id, func.count())
                .where(
                    Tour.agent_id.in_([a.user_id for a in free]),
                    Tour.status == TourStatus.scheduled,
                    Tour.starts_at >= day_start,
                    Tour.starts_at < day_end,
                )
                .group_by(Tour.agent_id)
            )
        ).all()
    )
    best = min(free, key=lambda a: (counts.get(a.user_id, 0), -a.weight, str(a.user_id)))
    return Placement(best.user_id, ends_at, busy_until)


async def flush_or_conflict(
    session: AsyncSession,
    tour: Tour,
    prop: Property | None,
    now: datetime,
    field: str,
    *,
    new: bool,
    changes: dict[str, Any] | None = None,
) -> None:
    """Write the tour (new, or with `changes` applied) inside a savepoint; the exclusion constraint's refusal
    (a racing booking that won) becomes the same 409 as the pre-check's. The savepoint opens before the
    tour changes, so opening it never flushes the change outside the try."""
    await session.flush()
    savepoint = await session.begin_nested()
    if new:
        session.add(tour)
    for name, value in (changes or {}).items():
        setattr(tour, name, value)
    # captured before the flush: a rolled-back savepoint expires what it changed
    values = (tour.org_id, tour.agent_id, tour.property_id, tour.starts_at, tour.busy_until, tour.id)
    tour_type = TourType(tour.tour_type)
    try:
        await session.flush()
    except IntegrityError as error:
        await savepoint.rollback()
        if _sqlstate(error) != EXCLUSION_VIOLATION:
            raise
        org_id, agent_id, property_id, starts_at, busy_until, tour_id = values
        clash = await clash_of(session, org_id, agent_id, property_id, starts_at, busy_until, tour_id)
        raise await conflict(session, prop, clash, starts_at, tour_type, agent_id, now, field) from None
    await savepoint.commit()


def _sqlstate(error: IntegrityError) -> str | None:
    orig = error.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state is None and orig is not None and orig.__cause__ is not None:
        state = getattr(orig.__cause__, "sqlstate", None)
    return state
