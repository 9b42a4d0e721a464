"""Who may own a lead at a property, who of them is in now, and the weighted round robin over them.

Candidates are the property's team; a property with no team (or a lead with no property) falls back to the
organization's active managers, then to its active agents. Availability: active, not away, and inside the
member's working hours (none written: always). The round robin is stride scheduling over a persisted cursor
(`round_robin_cursors`), serialized per pool by a transaction-scoped advisory lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from shared.enums import Role
from shared.models import PropertyTeamMember, RoundRobinCursor, User
from shared.models.lead import NO_PROPERTY
from shared.working_hours import WorkingHours

STRIDE = 2520  # divisible by every weight 1..10: passes stay exact integers


@dataclass
class Candidate:
    user_id: uuid.UUID
    name: str
    role: str
    weight: int = 1
    working_hours: WorkingHours | None = None
    away_until: datetime | None = None

    def unavailable_because(self, now: datetime, tz: ZoneInfo) -> str | None:
        if self.away_until is not None and self.away_until > now:
            return f"{self.name} away until {_local(self.away_until, now, tz)}"
        if self.working_hours is not None and not self.working_hours.is_open(now, tz):
            return f"{self.name} off shift"
        return None

    def available_at(self, now: datetime, tz: ZoneInfo) -> datetime | None:
        start = max(now, self.away_until) if self.away_until else now
        if self.working_hours is None:
            return start
        return self.working_hours.next_open(start, tz)


@dataclass
class Pool:
    pool_id: uuid.UUID
    source: str  # team | managers | agents
    candidates: list[Candidate] = field(default_factory=list)

    def in_working_hours(self, now: datetime, tz: ZoneInfo) -> bool:
        """Someone of the pool is on shift now (the SLA's "in working hours")."""
        return any(c.working_hours is None or c.working_hours.is_open(now, tz) for c in self.candidates)


def _local(at: datetime, now: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return local.strftime("%H:%M") if local.date() == now.astimezone(tz).date() else local.strftime("%a %d %b %H:%M")


async def load_pool(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None) -> Pool:
    """Who may own a lead here; read once per intake batch (services/api/txmemo.py)."""
    return await txmemo.remember_config(
        session, org_id, ("owners.pool", org_id, property_id), lambda: _load_pool(session, org_id, property_id)
    )


async def _load_pool(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None) -> Pool:
    pool_id = property_id or uuid.UUID(NO_PROPERTY)
    if property_id is not None:
        rows = await session.execute(
            select(
                User.id,
                User.name,
                User.role,
                User.away_until,
                PropertyTeamMember.weight,
                PropertyTeamMember.working_hours,
            )
            .join(PropertyTeamMember, PropertyTeamMember.user_id == User.id)
            .where(PropertyTeamMember.property_id == property_id, PropertyTeamMember.org_id == org_id)
            .where(User.is_active.is_(True))
            .order_by(User.name, User.id)
        )
        members = [
            Candidate(
                row.id,
                row.name,
                row.role,
                row.weight,
                WorkingHours.model_validate(row.working_hours) if row.working_hours else None,
                row.away_until,
            )
            for row in rows
        ]
        if members:
            return Pool(pool_id, "team", members)
    # no team: the managers, else the agents (one read for both)
    rows = await session.execute(
        select(User.id, User.name, User.role, User.away_until)
        .where(User.org_id == org_id, User.role.in_([Role.manager, Role.agent]), User.is_active.is_(True))
        .order_by(User.name, User.id)
    )
    everyone = [Candidate(row.id, row.name, row.role, 1, None, row.away_until) for row in rows]
    for role, source in ((Role.manager, "managers"), (Role.agent, "agents")):
        people = [person for person in everyone if person.role == role]
        if people:
            return Pool(pool_id, source, people)
    return Pool(pool_id, "nobody")


@dataclass(frozen=True)
class Pick:
    user_id: uuid.UUID
    name: str
    reason: str


async def pick_round_robin(
    session: AsyncSession, org_id: uuid.UUID, pool: Pool, now: datetime, tz: ZoneInfo, exclude: set[uuid.UUID]
) -> Pick | None:
    eligible = [c for c in pool.candidates if c.user_id not in exclude]
    if not eligible:
        return None
    key = f"owners.rr:{org_id}:{pool.pool_id}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
    where = (RoundRobinCursor.org_id == org_id) & (RoundRobinCursor.pool_id == pool.pool_id)
    rows = {row.user_id: row for row in await session.execute(select(RoundRobinCursor.__table__).where(where))}
    present = [rows[c.user_id].pass_value for c in eligible if c.user_id in rows]
    start = min(present) if present else 0  # a newcomer starts level with the team, not with a backlog
    missing = [c for c in eligible if c.user_id not in rows]
    if missing:
        await session.execute(
            insert(RoundRobinCursor)
            .values(
                [
                    {
                        "id": uuid.uuid4(),
                        "org_id": org_id,
                        "pool_id": pool.pool_id,
                        "user_id": c.user_id,
                        "pass_value": start,
                        "assigned_count": 0,
                    }
                    for c in missing
                ]
            )
            .on_conflict_do_nothing()
        )
        rows = {row.user_id: row for row in await session.execute(select(RoundRobinCursor.__table__).where(where))}
    order = {c.user_id: index for index, c in enumerate(pool.candidates)}
    passes = {c.user_id: rows[c.user_id].pass_value for c in eligible}
    skipped = [(c, why) for c in eligible if (why := c.unavailable_because(now, tz)) is not None]
    away = {c.user_id for c, _ in skipped}
    available = [c for c in eligible if c.user_id not in away]
    if available:
        chosen = min(available, key=lambda c: (passes[c.user_id], order[c.user_id]))
        head = f"round robin weight {chosen.weight}"
    else:
        timed = [(at, c) for c in eligible if (at := c.available_at(now, tz)) is not None]
        if not timed:
            return None
        at, chosen = min(timed, key=lambda item: (item[0], passes[item[1].user_id], order[item[1].user_id]))
        head = f"nobody in now; {chosen.name} is next on shift at {_local(at, now, tz)}"
    previous = max(
        (row for row in rows.values() if row.last_assigned_at is not None),
        key=lambda row: row.last_assigned_at,
        default=None,
    )
    names = {c.user_id: c.name for c in pool.candidates}
    parts = [head + (f": after {names[previous.user_id]}" if previous and previous.user_id in names else "")]
    parts += [why for _, why in skipped]
    if pool.source != "team":
        parts.append(f"no team at this property: the organization's {pool.source}")
    level = passes[chosen.user_id]
    await session.execute(
        update(RoundRobinCursor)
        .where(where, RoundRobinCursor.user_id == chosen.user_id)
        .values(
            pass_value=RoundRobinCursor.pass_value + STRIDE // max(1, chosen.weight),
            assigned_count=RoundRobinCursor.assigned_count + 1,
            last_assigned_at=now,
        )
    )
    behind = [c.user_id for c in eligible if c.user_id in away and passes[c.user_id] < level]
    if behind:  # no credit piles up while away or off shift: nobody comes back to a burst of leads
        await session.execute(
            update(RoundRobinCursor).where(where, RoundRobinCursor.user_id.in_(behind)).values(pass_value=level)
        )
    return Pick(chosen.user_id, chosen.name, "; ".join(parts))
