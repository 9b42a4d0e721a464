"""Notifications to owners and managers: a feed entry and an email (through the outbox), per preferences.

Kinds: new_lead, tour_request, question, offer, sla_breach, sensitive_conversation (others may be added by
callers; unknown kinds use the defaults). No preference row means feed and email are both on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.configcache import detached_copy
from services.api.messaging.outbox import StaffEmail, queue_staff_emails
from shared import clock
from shared.enums import Role
from shared.models import Lead, Notification, NotificationPreference, User
from shared.repositories.rows import insert_statement

_INSERT_NOTIFICATION = insert_statement(Notification.__table__, conflict=("id", "org_id"), returning="id")
KINDS = ("new_lead", "tour_request", "question", "offer", "sla_breach", "sensitive_conversation")


PENDING = "notifications"  # an intake batch writes its notifications at its end (services/api/signals/batch.py)


@dataclass(frozen=True)
class _Notice:
    """One user's notification: its feed row (when the feed is on) and whether an email goes too."""

    user: User
    row: dict[str, Any]
    feed: bool
    email: bool


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
) -> None:
    """One feed entry and/or one email per user, as each prefers.

    `key` makes a repeat a no-op per user. `also` names other kinds this one notification stands for (a new
    lead that asks for a tour is one notification, not two): a channel is on when the user keeps it on for
    any of the kinds. Users and preferences are read once per intake batch (services/api/txmemo.py), and an
    intake batch writes every signal's notifications and their emails at its end, two statements for the
    batch instead of two per signal (`write_pending`).
    """
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return
    kinds = (kind, *also)
    users = await txmemo.remember_config(
        session, org_id, ("notify.users", org_id, tuple(ids)), lambda: _users(session, org_id, ids)
    )
    prefs = await txmemo.remember_config(
        session, org_id, ("notify.prefs", org_id, tuple(ids), kinds), lambda: _prefs(session, org_id, ids, kinds)
    )
    now = clock.now()
    notices: dict[uuid.UUID, _Notice] = {}
    for user_id in ids:
        if user_id not in users:
            continue
        notification_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{org_id}/{key}/{user_id}") if key else uuid.uuid4()
        feed, email = _channels(prefs.get(user_id, []), len(kinds))
        row = {
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
        notices[notification_id] = _Notice(users[user_id], row, feed, email)
    pending = txmemo.deferred(session, PENDING)
    if pending is None:
        await _write(session, list(notices.values()))
        return
    for notification_id, notice in notices.items():
        pending.setdefault(notification_id, notice)  # a repeat of the key in the same batch: the first one


async def write_pending(session: AsyncSession) -> None:
    """Write what the batch's signals notified (the batch deferred it with `txmemo.defer(session, PENDING)`)."""
    pending = txmemo.deferred(session, PENDING)
    if pending:
        notices = list(pending.values())
        pending.clear()
        await txmemo.flush_before_references(session)  # the leads they point at (unless checked at commit)
        await _write(session, notices)


async def _write(session: AsyncSession, notices: list[_Notice]) -> None:
    """The feed rows in one statement, then the emails in one; a key already notified is a no-op per user."""
    rows = [notice.row for notice in notices if notice.feed]
    # ON CONFLICT: a repeat of the key is a no-op per user, decided by the row itself in one statement
    # prebuilt (shared/repositories/rows.py): the values travel as parameters, one statement for every row
    created = set((await session.execute(_INSERT_NOTIFICATION, rows)).scalars()) if rows else set()
    emails = [
        StaffEmail(
            org_id=notice.row["org_id"],
            user=notice.user,
            lead_id=notice.row["lead_id"],
            subject=notice.row["title"],
            body=notice.row["body"],
            idempotency_key=f"notify:{notice.row['id']}",
            reason=f"notification:{notice.row['kind']}",
        )
        for notice in notices
        if notice.email and (not notice.feed or notice.row["id"] in created)  # a repeat: this key notified them
    ]
    await queue_staff_emails(session, emails)


async def _users(session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    query = select(User).where(User.org_id == org_id, User.id.in_(ids), User.is_active.is_(True))
    return {user.id: detached_copy(user) for user in await session.scalars(query)}


async def _prefs(
    session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID], kinds: tuple[str, ...]
) -> dict[uuid.UUID, list[NotificationPreference]]:
    query = select(NotificationPreference).where(
        NotificationPreference.org_id == org_id,
        NotificationPreference.user_id.in_(ids),
        NotificationPreference.kind.in_(kinds),
    )
    found: dict[uuid.UUID, list[NotificationPreference]] = {}
    for pref in await session.scalars(query):
        found.setdefault(pref.user_id, []).append(detached_copy(pref))
    return found


def _channels(prefs: list[NotificationPreference], kinds: int) -> tuple[bool, bool]:
    """(feed, email): on when on for any kind; a kind without a preference row has both on."""
    if len(prefs) < kinds:
        return True, True
    return any(pref.feed for pref in prefs), any(pref.email for pref in prefs)


async def lead_watchers(session: AsyncSession, lead: Lead) -> list[uuid.UUID]:
    """Who hears about a lead: its owner, and the organization's admins and managers (the landlord)."""
    managers = await txmemo.remember_config(
        session, lead.org_id, ("notify.managers", lead.org_id), lambda: _managers(session, lead.org_id)
    )
    return [lead.owner_id, *managers] if lead.owner_id else list(managers)


async def _managers(session: AsyncSession, org_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        await session.scalars(
            select(User.id)
            .where(User.org_id == org_id, User.is_active.is_(True), User.role.in_([Role.admin, Role.manager]))
            .order_by(User.created_at, User.id)
        )
    )
