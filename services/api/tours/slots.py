"""Free tour slots: agents' working hours (property_team_members, shared.working_hours) minus their tours
(length + buffer), the property's blackouts, away time and minimum notice.

Slots start at each working window's start and step by the property's interval; a slot fits when the tour
(not its buffer) ends inside the window. A slot is free for an agent when [start, start + length + buffer)
overlaps none of that agent's scheduled tours' [starts_at, busy_until) — the same test the database's
exclusion constraint applies, so a listed slot books unless someone takes it first. Self-guided tours have
no agent: they use the property's self-guided hours (else its default hours) and exclude each other per
property. Days are local days in the property's timezone, converted window by window (DST-safe).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import TourStatus, TourType
from shared.models import Property, PropertyTeamMember, Tour, TourBlackout, TourSettings, User
from shared.working_hours import WorkingHours, zone

DEFAULT_HOURS = WorkingHours.every_day(time(9), time(18))
ALL_TYPES = [t.value for t in TourType]


@dataclass(frozen=True, slots=True)
class Rules:
    length: timedelta
    buffer: timedelta
    interval: timedelta
    min_notice: timedelta
    types: list[str]
    default_hours: WorkingHours
    self_guided_hours: WorkingHours


@dataclass(slots=True)
class Agent:
    user_id: uuid.UUID
    weight: int
    hours: WorkingHours
    away_until: datetime | None


@dataclass(slots=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    agent_ids: list[uuid.UUID] = field(default_factory=list)


async def load_rules(session: AsyncSession, prop: Property) -> Rules:
    row = await session.scalar(
        select(TourSettings).where(TourSettings.org_id == prop.org_id, TourSettings.property_id == prop.id)
    )
    if row is None:
        return Rules(
            timedelta(minutes=30),
            timedelta(minutes=15),
            timedelta(minutes=30),
            timedelta(minutes=60),
            ALL_TYPES,
            DEFAULT_HOURS,
            DEFAULT_HOURS,
        )
    default = WorkingHours.model_validate(row.default_hours) if row.default_hours else DEFAULT_HOURS
    return Rules(
        length=timedelta(minutes=row.length_minutes),
        buffer=timedelta(minutes=row.buffer_minutes),
        interval=timedelta(minutes=row.interval_minutes),
        min_notice=timedelta(minutes=row.min_notice_minutes),
        types=list(row.tour_types),
        default_hours=default,
        self_guided_hours=WorkingHours.model_validate(row.self_guided_hours) if row.self_guided_hours else default,
    )


async def team(session: AsyncSession, prop: Property, rules: Rules) -> list[Agent]:
    """Active agents on the property's team; an agent without hours works the property's default hours."""
    rows = await session.execute(
        select(PropertyTeamMember.user_id, PropertyTeamMember.weight, PropertyTeamMember.working_hours, User.away_until)
        .join(User, User.id == PropertyTeamMember.user_id)
        .where(
            PropertyTeamMember.org_id == prop.org_id,
            PropertyTeamMember.property_id == prop.id,
            User.is_active.is_(True),
        )
        .order_by(PropertyTeamMember.weight.desc(), PropertyTeamMember.user_id)
    )
    return [
        Agent(user_id, weight, WorkingHours.model_validate(hours) if hours else rules.default_hours, away)
        for user_id, weight, hours, away in rows
    ]


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


async def busy(
    session: AsyncSession, prop: Property, agent_ids: list[uuid.UUID], start: datetime, end: datetime
) -> tuple[dict[uuid.UUID | None, list[tuple[datetime, datetime]]], list[tuple[datetime, datetime]]]:
    """Scheduled tours overlapping [start, end) by agent (None = the property's self-guided tours), and the
    property's blackouts."""
    tours = await session.execute(
        select(Tour.agent_id, Tour.tour_type, Tour.property_id, Tour.starts_at, Tour.busy_until).where(
            Tour.org_id == prop.org_id,
            Tour.status == TourStatus.scheduled,
            Tour.starts_at < end,
            Tour.busy_until > start,
            or_(
                Tour.agent_id.in_(agent_ids),
                and_(Tour.agent_id.is_(None), Tour.tour_type == TourType.self_guided, Tour.property_id == prop.id),
            ),
        )
    )
    by_agent: dict[uuid.UUID | None, list[tuple[datetime, datetime]]] = {}
    for agent_id, _type, _prop, starts_at, busy_until in tours:
        by_agent.setdefault(agent_id, []).append((starts_at, busy_until))
    blackouts = await session.execute(
        select(TourBlackout.starts_at, TourBlackout.ends_at).where(
            TourBlackout.org_id == prop.org_id,
            TourBlackout.property_id == prop.id,
            TourBlackout.starts_at < end,
            TourBlackout.ends_at > start,
        )
    )
    return by_agent, [(s, e) for s, e in blackouts]


def _overlaps(start: datetime, end: datetime, ranges: list[tuple[datetime, datetime]]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end in ranges)


def candidate_starts(hours: WorkingHours, day: date, tz: ZoneInfo, rules: Rules) -> list[datetime]:
    out = []
    for window_start, window_end in hours.windows_on(day, tz):
        at = window_start
        while at + rules.length <= window_end:
            out.append(at)
            at += rules.interval
    return out


def fits_hours(hours: WorkingHours, starts_at: datetime, tz: ZoneInfo, rules: Rules) -> bool:
    """The whole tour (not its buffer) lies inside one working window of its local day."""
    day = starts_at.astimezone(tz).date()
    return any(s <= starts_at and starts_at + rules.length <= e for s, e in hours.windows_on(day, tz))


async def free_slots(
    session: AsyncSession,
    prop: Property,
    day: date,
    tour_type: TourType,
    now: datetime,
    *,
    agent_id: uuid.UUID | None = None,
    rules: Rules | None = None,
    agents: list[Agent] | None = None,
) -> list[Slot]:
    rules = rules or await load_rules(session, prop)
    if tour_type.value not in rules.types:
        return []
    tz = zone(prop.timezone)
    day_start, day_end = day_bounds(day, tz)
    earliest = now + rules.min_notice
    agents = agents if agents is not None else await team(session, prop, rules)
    if agent_id is not None:
        agents = [agent for agent in agents if agent.user_id == agent_id]
    # tours that start the evening before can still block the first slots (buffer)
    by_agent, blackouts = await busy(
        session, prop, [a.user_id for a in agents], day_start - timedelta(days=1), day_end + timedelta(days=1)
    )
    slots: dict[datetime, Slot] = {}

    def consider(at: datetime, who: uuid.UUID | None, away_until: datetime | None) -> None:
        end = at + rules.length
        if at < earliest or _overlaps(at, end, blackouts):
            return
        if away_until is not None and away_until > at:
            return
        if _overlaps(at, end + rules.buffer, by_agent.get(who, [])):
            return
        slot = slots.setdefault(at, Slot(at, end))
        if who is not None:
            slot.agent_ids.append(who)

    if tour_type == TourType.self_guided:
        for at in candidate_starts(rules.self_guided_hours, day, tz, rules):
            consider(at, None, None)
    else:
        for agent in agents:
            for at in candidate_starts(agent.hours, day, tz, rules):
                consider(at, agent.user_id, agent.away_until)
    return [slots[at] for at in sorted(slots)]


async def nearest_slots(
    session: AsyncSession,
    prop: Property,
    wanted: datetime,
    tour_type: TourType,
    now: datetime,
    *,
    agent_id: uuid.UUID | None,
    count: int = 3,
) -> list[Slot]:
    """The free slots closest to `wanted` (the day before, that day and the two after), for the agent asked
    for when there are any, else for anyone."""
    rules = await load_rules(session, prop)
    agents = await team(session, prop, rules)
    local_day = wanted.astimezone(zone(prop.timezone)).date()
    found: list[Slot] = []
    for offset in (-1, 0, 1, 2):
        found += await free_slots(
            session, prop, local_day + timedelta(days=offset), tour_type, now, rules=rules, agents=agents
        )
    if agent_id is not None:
        own = [Slot(s.starts_at, s.ends_at, [agent_id]) for s in found if agent_id in s.agent_ids]
        found = own or found
    found.sort(key=lambda s: (abs((s.starts_at - wanted).total_seconds()), s.starts_at))
    return sorted(found[:count], key=lambda s: s.starts_at)
