"""Driving the automation through the API and the drain job, and reading its decisions."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.automation.jobs import drain_scheduled_actions
from shared import clock
from shared.config import Settings
from shared.models import AutomationLog, Lead, ScheduledAction, Task, User
from tests.conftest import OrgFixture
from tests.signals.helpers import envelope, post_signal

SessionMaker = async_sessionmaker[AsyncSession]


async def add_agent(sessionmaker: SessionMaker, org: OrgFixture, name: str = "Agent A") -> uuid.UUID:
    user_id = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        session.add(
            User(id=user_id, org_id=org.org_id, email=f"{user_id.hex[:8]}@example.com", name=name, role="agent")
        )
    return user_id


async def signal(client: httpx.AsyncClient, org: OrgFixture, **fields: Any) -> dict[str, Any]:
    fields.setdefault("occurred_at", clock.now())
    return await post_signal(client, envelope(org.org_id, **fields))


async def drain(settings: Settings, sessionmaker: SessionMaker) -> int:
    return await drain_scheduled_actions({"sessionmaker": sessionmaker, "settings": settings, "redis": None})


async def lead_row(sessionmaker: SessionMaker, lead_id: Any) -> Lead:
    async with sessionmaker() as session:
        return await session.get_one(Lead, uuid.UUID(str(lead_id)))


async def decisions(sessionmaker: SessionMaker, *, lead_id: Any = None, contact_id: Any = None) -> list[AutomationLog]:
    """The send decisions (the effects seam's records) and suppressions, oldest first."""
    query = select(AutomationLog).where(AutomationLog.action == "send_template")
    if lead_id is not None:
        query = query.where(AutomationLog.lead_id == uuid.UUID(str(lead_id)))
    if contact_id is not None:
        query = query.where(AutomationLog.contact_id == uuid.UUID(str(contact_id)))
    async with sessionmaker() as session:
        return list((await session.scalars(query.order_by(AutomationLog.occurred_at, AutomationLog.id))).all())


def sent(entries: list[AutomationLog]) -> list[str]:
    return [entry.data["template"] for entry in entries if entry.outcome == "decided"]


async def tasks(sessionmaker: SessionMaker, lead_id: Any) -> list[Task]:
    async with sessionmaker() as session:
        query = select(Task).where(Task.lead_id == uuid.UUID(str(lead_id))).order_by(Task.created_at)
        return list((await session.scalars(query)).all())


async def steps(sessionmaker: SessionMaker, lead_id: Any) -> list[ScheduledAction]:
    async with sessionmaker() as session:
        query = select(ScheduledAction).where(ScheduledAction.lead_id == uuid.UUID(str(lead_id)))
        return list((await session.scalars(query.order_by(ScheduledAction.due_at, ScheduledAction.step))).all())


APPLY_URL = "https://apply.example/org-default"


async def set_application_url(client: httpx.AsyncClient, org: OrgFixture, url: str = APPLY_URL) -> None:
    """The organization's default application link (templates with {{application_link}} need one)."""
    response = await client.put("/v1/messaging/settings", json={"application_url": url}, headers=org.headers)
    assert response.status_code == 200, response.text
