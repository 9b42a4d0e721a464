"""The one way owners tells managers something (everyone declined an offer, an SLA breach).

Through messaging's `notify` (a feed entry and/or an email per each manager's preferences); the people told
are returned, and the caller records them on its timeline event (`notified`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.messaging.notify import notify
from shared.enums import Role
from shared.logging import get_logger
from shared.models import Lead, PropertyTeamMember, User

log = get_logger(__name__)


async def manager_ids(session: AsyncSession, lead: Lead) -> list[uuid.UUID]:
    """The property team's managers, else the organization's managers, else its admins."""
    active = (User.org_id == lead.org_id) & User.is_active.is_(True)
    if lead.property_id is not None:
        team = list(
            await session.scalars(
                select(User.id)
                .join(PropertyTeamMember, PropertyTeamMember.user_id == User.id)
                .where(active, PropertyTeamMember.property_id == lead.property_id, User.role == Role.manager)
                .order_by(User.id)
            )
        )
        if team:
            return team
    for role in (Role.manager, Role.admin):
        people = list(await session.scalars(select(User.id).where(active, User.role == role).order_by(User.id)))
        if people:
            return people
    return []


async def tell_managers(
    session: AsyncSession, lead: Lead, kind: str, title: str, body: str, data: dict[str, Any] | None = None
) -> list[uuid.UUID]:
    """Tell the lead's managers; returns who was told (record it on the timeline event as `notified`)."""
    user_ids = await manager_ids(session, lead)
    await notify(
        session, org_id=lead.org_id, user_ids=user_ids, kind=kind, lead_id=lead.id, title=title, body=body, data=data
    )
    log.info("owners.managers_told", lead_id=str(lead.id), kind=kind, count=len(user_ids))
    return user_ids
