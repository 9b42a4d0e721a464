"""Notifications to owners and managers: a feed entry and an email (through the outbox), per preferences.

Kinds: new_lead, tour_request, question, offer, sla_breach, sensitive_conversation (others may be added by
callers; unknown kinds use the defaults). No preference row means feed and email are both on.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.messaging.outbox import queue_staff_email
from shared import clock
from shared.enums import Role
from shared.models import Lead, Notification, NotificationPreference, User
from shared.repositories.rows import insert_statement

_INSERT_NOTIFICATION = insert_statement(Notification.__table__, conflict=("id", "org_id"), returning="id")
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
    also: tuple[str, ...] = (),
) -> list[uuid.UUID]:
    """One feed entry and/or one email per user, as each prefers; returns the new feed entries' ids.

    `key` makes a repeat a no-op per user. `also` names other kinds this one notification stands for (a new
    lead that asks for a tour is one notification, not two): a channel is on when the user keeps it on for
    any of the kinds. Users and preferences are read once per intake batch (services/api/txmemo.py).
    """
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return []
    kinds = (kind, *also)
    users = await txmemo.remember(session, ("notify.users", org_id, tuple(ids)), lambda: _users(session, org_id, ids))
    prefs = await txmemo.remember(session, ("notify.prefs", tuple(ids), kinds), lambda: _prefs(session, ids, kinds))
    notification_ids = {
        user_id: uuid.uuid5(uuid.NAMESPACE_URL, f"{org_id}/{key}/{user_id}") if key else uuid.uuid4()
        for user_id in ids
        if user_id in users
    }
    channels = {user_id: _channels(prefs.get(user_id, []), len(kinds)) for user_id in notification_ids}
    now = clock.now()
    rows = [
        {
            "id": notification_id,
            "org_id": org_id,
            "user_id": user_id,
            "kind": kind,
            "lead_id": lead_id,
            "title": title[:300],
            "body": body,
            "data": data or {},
            "created_at": now,
            "updated_at": now,
        }
        for user_id, notification_id in notification_ids.items()
        if channels[user_id][0]
    ]
    # ON CONFLICT: a repeat of the key is a no-op per user, decided by the row itself in one statement
    # prebuilt (shared/repositories/rows.py): the values travel as parameters, one statement for every row
    created = set((await session.execute(_INSERT_NOTIFICATION, rows)).scalars()) if rows else set()
    for user_id, notification_id in notification_ids.items():
        feed, email = channels[user_id]
        if feed and notification_id not in created:
            continue  # this key already notified this user
        if email:
            await queue_staff_email(
                session,
                org_id=org_id,
                user=users[user_id],
                lead_id=lead_id,
                subject=title[:300],
                body=body,
                idempotency_key=f"notify:{notification_id}",
                reason=f"notification:{kind}",
            )
    return [notification_id for notification_id in notification_ids.values() if notification_id in created]


async def _users(session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    query = select(User).where(User.org_id == org_id, User.id.in_(ids), User.is_active.is_(True))
    return {user.id: user for user in await session.scalars(query)}


async def _prefs(
    session: AsyncSession, ids: list[uuid.UUID], kinds: tuple[str, ...]
) -> dict[uuid.UUID, list[NotificationPreference]]:
    query = select(NotificationPreference).where(
        NotificationPreference.user_id.in_(ids), NotificationPreference.kind.in_(kinds)
    )
    found: dict[uuid.UUID, list[NotificationPreference]] = {}
    for pref in await session.scalars(query):
        found.setdefault(pref.user_id, []).append(pref)
    return found


def _channels(prefs: list[NotificationPreference], kinds: int) -> tuple[bool, bool]:
    """(feed, email): on when on for any kind; a kind without a preference row has both on."""
    if len(prefs) < kinds:
        return True, True
    return any(pref.feed for pref in prefs), any(pref.email for pref in prefs)


async def lead_watchers(session: AsyncSession, lead: Lead) -> list[uuid.UUID]:
    """Who hears about a lead: its owner, and the organization's admins and managers (the landlord)."""
    managers = await txmemo.remember(session, ("notify.managers", lead.org_id), lambda: _managers(session, lead.org_id))
    return [lead.owner_id, *managers] if lead.owner_id else list(managers)


async def _managers(session: AsyncSession, org_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        await session.scalars(
            select(User.id)
            .where(User.org_id == org_id, User.is_active.is_(True), User.role.in_([Role.admin, Role.manager]))
            .order_by(User.created_at, User.id)
        )
    )
