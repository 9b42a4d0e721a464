"""People, teams, assignment settings and collaborators: the writes behind the owners endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth import cache as principal_cache
from services.api.auth.service import Principal
from services.api.leads.events import add_event
from services.api.owners.assignment import reassign_user_leads
from services.api.owners.config import AssignmentConfig, load_config, timezone_for
from services.api.owners.schemas import (
    AssignmentIn,
    AssignmentOut,
    OwnersSettings,
    TeamIn,
    TeamMemberOut,
    TeamMembership,
    TeamOut,
    UserOut,
    UserUpdate,
)
from shared.enums import EventType, Role
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.models import AssignmentSetting, Lead, LeadCollaborator, Organization, Property, PropertyTeamMember, User
from shared.working_hours import WorkingHours


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field.rsplit('.', 1)[-1]} is not valid.", errors=[{"field": field, "message": message}])


async def _memberships(
    session: AsyncSession, org_id: uuid.UUID, now: datetime
) -> dict[uuid.UUID, list[TeamMembership]]:
    rows = await session.execute(
        select(PropertyTeamMember, Property.timezone)
        .join(Property, Property.id == PropertyTeamMember.property_id)
        .where(PropertyTeamMember.org_id == org_id)
    )
    out: dict[uuid.UUID, list[TeamMembership]] = {}
    for member, tz_name in rows:
        from shared.working_hours import zone

        hours = WorkingHours.model_validate(member.working_hours) if member.working_hours else None
        on_shift = hours is None or hours.is_open(now, zone(tz_name))
        out.setdefault(member.user_id, []).append(
            TeamMembership(property_id=member.property_id, weight=member.weight, on_shift=on_shift)
        )
    return out


def user_out(user: User, now: datetime, teams: list[TeamMembership] | None = None) -> UserOut:
    away = user.away_until is not None and user.away_until > now
    availability = "inactive" if not user.is_active else "away" if away else "available"
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        active=user.is_active,
        is_active=user.is_active,
        mobile_phone=user.mobile_phone,
        away_until=user.away_until,
        availability=availability,  # type: ignore[arg-type]
        teams=teams or [],
    )


async def list_users(session: AsyncSession, org_id: uuid.UUID, now: datetime) -> list[UserOut]:
    users = await session.scalars(select(User).where(User.org_id == org_id).order_by(User.name, User.id))
    teams = await _memberships(session, org_id, now)
    return [user_out(user, now, teams.get(user.id)) for user in users]


async def get_user(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID, lock: bool = False) -> User:
    query = select(User).where(User.id == user_id, User.org_id == org_id)
    if lock:
        query = query.with_for_update()
    user = await session.scalar(query)
    if user is None:
        raise NotFound("User not found.")
    return user


_SELF_FIELDS = {"name", "mobile_phone", "away_until"}
_NULLABLE = {"mobile_phone", "away_until"}
_ADMIN_FIELDS = {"role", "email"}


async def update_user(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, body: UserUpdate, now: datetime
) -> tuple[User, dict[str, int] | None]:
    """Never a hard delete: `active: false` keeps the user on history and moves its open leads on."""
    user = await get_user(session, principal.org_id, user_id, lock=True)
    # the shared PATCH rule: a null for a column that cannot be null leaves it as it was
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in _NULLABLE}
    if principal.role == Role.agent:
        if principal.user_id != user.id or set(changes) - _SELF_FIELDS:
            raise Forbidden("Agents may change only their own name, mobile phone and away time.")
    elif principal.role == Role.manager and set(changes) & _ADMIN_FIELDS:
        raise Forbidden("Changing a user's role or email needs an admin.")
    if "email" in changes:
        changes["email"] = changes["email"].strip().lower()
    deactivate = changes.get("active") is False and user.is_active
    if "active" in changes:
        user.is_active = changes.pop("active")
    for key, value in changes.items():
        setattr(user, key, value)
    user.updated_at = now
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        raise Conflict("A user with this email already exists.") from error
    moved = None
    if deactivate:
        principal_cache.invalidate(session, user_ids=[user.id])  # a deactivated user's keys stop now
        moved = await reassign_user_leads(session, principal.org_id, user.id, now, f"{user.name} was deactivated")
    return user, moved


async def reassign(session: AsyncSession, principal: Principal, user_id: uuid.UUID, now: datetime) -> dict[str, int]:
    user = await get_user(session, principal.org_id, user_id)
    return await reassign_user_leads(session, principal.org_id, user.id, now, f"{user.name}'s leads were reassigned")


async def _property(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID) -> Property:
    found = await session.scalar(select(Property).where(Property.id == property_id, Property.org_id == org_id))
    if found is None:
        raise NotFound("Property not found.")
    return found


async def get_team(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID, now: datetime) -> TeamOut:
    prop = await _property(session, org_id, property_id)
    tz = await timezone_for(session, org_id, prop.id)
    rows = await session.execute(
        select(PropertyTeamMember, User)
        .join(User, User.id == PropertyTeamMember.user_id)
        .where(PropertyTeamMember.property_id == prop.id)
        .order_by(User.name, User.id)
    )
    members = []
    for member, user in rows:
        hours = WorkingHours.model_validate(member.working_hours) if member.working_hours else None
        away = user.away_until is not None and user.away_until > now
        available = user.is_active and not away and (hours is None or hours.is_open(now, tz))
        members.append(
            TeamMemberOut(
                user_id=user.id, name=user.name, weight=member.weight, working_hours=hours, available=available
            )
        )
    return TeamOut(property_id=prop.id, members=members)


async def put_team(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID, body: TeamIn, now: datetime
) -> TeamOut:
    prop = await _property(session, org_id, property_id)
    seen: set[uuid.UUID] = set()
    for index, member in enumerate(body.members):
        field = f"body.members[{index}].user_id"
        if member.user_id in seen:
            raise _invalid(field, "this user is listed twice")
        seen.add(member.user_id)
        found = await session.scalar(
            select(User.id).where(User.id == member.user_id, User.org_id == org_id, User.is_active.is_(True))
        )
        if found is None:
            raise _invalid(field, "not an active user of this organization")
    existing = {
        row.user_id: row
        for row in await session.scalars(
            select(PropertyTeamMember).where(PropertyTeamMember.property_id == prop.id).with_for_update()
        )
    }
    await session.execute(
        delete(PropertyTeamMember).where(
            PropertyTeamMember.property_id == prop.id, PropertyTeamMember.user_id.notin_(seen)
        )
    )
    for member in body.members:
        hours = member.working_hours.model_dump(mode="json") if member.working_hours else None
        row = existing.get(member.user_id)
        if row is None:
            session.add(
                PropertyTeamMember(
                    org_id=org_id,
                    property_id=prop.id,
                    user_id=member.user_id,
                    weight=member.weight,
                    working_hours=hours,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            row.weight, row.working_hours, row.updated_at = member.weight, hours, now
    await session.flush()
    return await get_team(session, org_id, prop.id, now)


def _assignment_out(config: AssignmentConfig, property_id: uuid.UUID | None) -> AssignmentOut:
    return AssignmentOut(
        property_id=property_id,
        source=config.source,
        strategy=config.strategy,  # type: ignore[arg-type]
        fixed_user_id=config.fixed_user_id,
        fallback_strategy=config.fallback_strategy,  # type: ignore[arg-type]
        offers_enabled=config.offers_enabled,
        offer_timeout_minutes=config.offer_timeout_minutes,
        sla_minutes=config.sla_minutes,
        sla_after_hours_minutes=config.sla_after_hours_minutes,
        sla_reassign=config.sla_reassign,
    )


async def get_assignment(session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None) -> AssignmentOut:
    if property_id is not None:
        await _property(session, org_id, property_id)
    return _assignment_out(await load_config(session, org_id, property_id), property_id)


async def put_assignment(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None, body: AssignmentIn, now: datetime
) -> AssignmentOut:
    if property_id is not None:
        await _property(session, org_id, property_id)
    if body.strategy == "fixed" and body.fixed_user_id is None:
        raise _invalid("body.fixed_user_id", "the fixed strategy needs an agent")
    if body.fixed_user_id is not None:
        found = await session.scalar(
            select(User.id).where(User.id == body.fixed_user_id, User.org_id == org_id, User.is_active.is_(True))
        )
        if found is None:
            raise _invalid("body.fixed_user_id", "not an active user of this organization")
        if property_id is not None:
            team = set(
                await session.scalars(
                    select(PropertyTeamMember.user_id).where(PropertyTeamMember.property_id == property_id)
                )
            )
            if team and body.fixed_user_id not in team:
                raise _invalid("body.fixed_user_id", "not on the property's team")
    match = (
        AssignmentSetting.property_id.is_(None) if property_id is None else AssignmentSetting.property_id == property_id
    )
    row = await session.scalar(
        select(AssignmentSetting).where(AssignmentSetting.org_id == org_id, match).with_for_update()
    )
    values: dict[str, Any] = body.model_dump()
    if row is None:
        row = AssignmentSetting(org_id=org_id, property_id=property_id, created_at=now, **values)
        session.add(row)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    row.updated_at = now
    await session.flush()
    return await get_assignment(session, org_id, property_id)


async def get_settings(session: AsyncSession, org_id: uuid.UUID) -> OwnersSettings:
    org = await session.get_one(Organization, org_id)
    return OwnersSettings(agents_see_all=org.agents_see_all, agents_can_reassign=org.agents_can_reassign)


async def patch_settings(session: AsyncSession, org_id: uuid.UUID, body: OwnersSettings) -> OwnersSettings:
    org = await session.get_one(Organization, org_id, with_for_update=True)
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(org, key, value)
    await session.flush()
    return await get_settings(session, org_id)


async def collaborators(session: AsyncSession, lead: Lead) -> list[uuid.UUID]:
    return list(
        await session.scalars(
            select(LeadCollaborator.user_id)
            .where(LeadCollaborator.lead_id == lead.id)
            .order_by(LeadCollaborator.created_at, LeadCollaborator.user_id)
        )
    )


async def put_collaborators(
    session: AsyncSession, principal: Principal, lead: Lead, user_ids: list[uuid.UUID], now: datetime
) -> list[uuid.UUID]:
    if principal.role == Role.agent and lead.owner_id != principal.user_id:
        raise Forbidden("Only the lead's owner, a manager or an admin may change its collaborators.")
    wanted = list(dict.fromkeys(user_ids))
    for index, user_id in enumerate(wanted):
        found = await session.scalar(
            select(User.id).where(User.id == user_id, User.org_id == lead.org_id, User.is_active.is_(True))
        )
        if found is None:
            raise _invalid(f"body.user_ids[{index}]", "not an active user of this organization")
    before = await collaborators(session, lead)
    if set(before) == set(wanted):
        return before
    await session.execute(
        delete(LeadCollaborator).where(LeadCollaborator.lead_id == lead.id, LeadCollaborator.user_id.notin_(wanted))
    )
    for user_id in wanted:
        if user_id not in before:
            session.add(
                LeadCollaborator(org_id=lead.org_id, lead_id=lead.id, user_id=user_id, created_at=now, updated_at=now)
            )
    add_event(
        session,
        lead,
        EventType.collaborators_changed,
        occurred_at=now,
        actor_type="user",
        actor_id=principal.user_id,
        data={"from": [str(u) for u in before], "to": [str(u) for u in wanted]},
    )
    await session.flush()
    return await collaborators(session, lead)
