"""Notifications to owners and managers: a feed entry and an email (through the outbox), per preferences.

Kinds: new_lead, tour_request, question, offer, sla_breach, sensitive_conversation (others may be added by
callers; unknown kinds use the defaults). No preference row means feed and email are both on.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.messaging.outbox import queue_staff_email
from shared.enums import Role
from shared.models import Lead, Notification, NotificationPreference, User

KINDS = ("new_lead", "tour_request", "question", "offer", "sla_breach", "sensitive_conversation")


async def notify(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    user_ids: list[uuid.UUID],
    kind: str,
    lead_id: uuid.UUID | None,
    title: str,
    body: str,
    data: dict[str, Any] | None = None,
    key: str | None = None,
) -> list[Notification]:
    """One feed entry and/or one email per user, as each prefers. `key` makes a repeat a no-op per user."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return []
    users = {
        user.id: user
        for user in await session.scalars(
            select(User).where(User.org_id == org_id, User.id.in_(ids), User.is_active.is_(True))
        )
    }
    prefs = {
        pref.user_id: pref
        for pref in await session.scalars(
            select(NotificationPreference).where(
                NotificationPreference.user_id.in_(ids), NotificationPreference.kind == kind
            )
        )
    }
    notification_ids = {
        user_id: uuid.uuid5(uuid.NAMESPACE_URL, f"{org_id}/{key}/{user_id}") if key else uuid.uuid4()
        for user_id in ids
        if user_id in users
    }
    # a repeat of the key is a no-op per user: one read for all of them, not one per user
    already = (
        set(
            await session.scalars(
                select(Notification.id).where(
                    Notification.org_id == org_id, Notification.id.in_(list(notification_ids.values()))
                )
            )
        )
        if key and notification_ids
        else set()
    )
    created: list[Notification] = []
    for user_id, notification_id in notification_ids.items():
        user = users[user_id]
        pref = prefs.get(user_id)
        if notification_id in already:
            continue
        if pref is None or pref.feed:
            item = Notification(
                id=notification_id,
                org_id=org_id,
                user_id=user_id,
                kind=kind,
                lead_id=lead_id,
                title=title[:300],
                body=body,
                data=data or {},
            )
            session.add(item)
            created.append(item)
        if pref is None or pref.email:
            await queue_staff_email(
                session,
                org_id=org_id,
                user=user,
                lead_id=lead_id,
                subject=title[:300],
                body=body,
                idempotency_key=f"notify:{notification_id}",
                reason=f"notification:{kind}",
            )
    await session.flush()
    return created


async def lead_watchers(session: AsyncSession, lead: Lead) -> list[uuid.UUID]:
    """Who hears about a lead: its owner, and the organization's admins and managers (the landlord)."""
    managers = list(
        await session.scalars(
            select(User.id)
            .where(User.org_id == lead.org_id, User.is_active.is_(True), User.role.in_([Role.admin, Role.manager]))
            .order_by(User.created_at, User.id)
        )
    )
    return [lead.owner_id, *managers] if lead.owner_id else managers
