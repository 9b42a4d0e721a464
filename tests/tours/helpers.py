"""Fixtures for tours and units: a property with a tour team, inserted directly (owners builds the API)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import PropertyTeamMember, User
from tests.conftest import OrgFixture

SessionMaker = async_sessionmaker[AsyncSession]


async def make_property(client: httpx.AsyncClient, org: OrgFixture, timezone: str, name: str = "Maple Court") -> str:
    response = await client.post("/v1/properties", json={"name": name, "timezone": timezone}, headers=org.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def add_agent(
    sessionmaker: SessionMaker,
    org: OrgFixture,
    property_id: str,
    hours: dict[str, Any] | None,
    *,
    name: str = "Avery Agent",
    weight: int = 1,
) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert(User).values(
                id=user_id, org_id=org.org_id, email=f"{user_id.hex[:8]}@agents.test", name=name, role="agent"
            )
        )
        await session.execute(
            insert(PropertyTeamMember).values(
                id=uuid.uuid4(),
                org_id=org.org_id,
                property_id=uuid.UUID(property_id),
                user_id=user_id,
                weight=weight,
                working_hours=hours,
            )
        )
    return user_id


def every_day(start: str, end: str) -> dict[str, Any]:
    return {day: [{"start": start, "end": end}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
