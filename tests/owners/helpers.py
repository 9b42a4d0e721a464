"""Building an organization's people, teams and leads through the API, the way an operator would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import Settings
from shared.models import Lead, LeadEvent
from tests.conftest import OrgFixture
from tests.signals.helpers import envelope, post_signal


@dataclass
class Person:
    id: uuid.UUID
    name: str
    email: str
    headers: dict[str, str]


async def person(client: httpx.AsyncClient, org: OrgFixture, name: str, role: str = "agent") -> Person:
    email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:6]}@example.com"
    created = await client.post("/v1/users", json={"email": email, "name": name, "role": role}, headers=org.headers)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    key = await client.post("/v1/api-keys", json={"name": name, "role": role, "user_id": user_id}, headers=org.headers)
    assert key.status_code == 201, key.text
    return Person(uuid.UUID(user_id), name, email, {"Authorization": f"Bearer {key.json()['key']}"})


async def property_with_team(
    client: httpx.AsyncClient, org: OrgFixture, members: list[tuple[Person, int]] | list[dict[str, Any]], **extra: Any
) -> uuid.UUID:
    created = await client.post("/v1/properties", json={"name": f"Maple {uuid.uuid4().hex[:4]}"}, headers=org.headers)
    assert created.status_code == 201, created.text
    property_id = uuid.UUID(created.json()["id"])
    body = [
        m if isinstance(m, dict) else {"user_id": str(m[0].id), "weight": m[1]}
        for m in members  # type: ignore[union-attr]
    ]
    team = await client.put(f"/v1/properties/{property_id}/team", json={"members": body}, headers=org.headers)
    assert team.status_code == 200, team.text
    if extra:
        assignment = await client.put(f"/v1/properties/{property_id}/assignment", json=extra, headers=org.headers)
        assert assignment.status_code == 200, assignment.text
    return property_id


async def new_lead(
    client: httpx.AsyncClient, org: OrgFixture, property_id: uuid.UUID | None, **fields: Any
) -> uuid.UUID:
    email = fields.pop("email", None) or f"renter.{uuid.uuid4().hex[:10]}@example.org"
    body = envelope(org.org_id, email=email, property_id=property_id, **fields)
    return uuid.UUID((await post_signal(client, body))["lead_id"])


async def lead_row(sessionmaker: async_sessionmaker[AsyncSession], lead_id: uuid.UUID) -> Lead:
    async with sessionmaker() as session:
        return await session.get_one(Lead, lead_id)


async def events(sessionmaker: async_sessionmaker[AsyncSession], lead_id: uuid.UUID, *types: str) -> list[LeadEvent]:
    async with sessionmaker() as session:
        query = select(LeadEvent).where(LeadEvent.lead_id == lead_id)
        if types:
            query = query.where(LeadEvent.type.in_(types))
        return list(await session.scalars(query.order_by(LeadEvent.occurred_at, LeadEvent.id)))


def job_ctx(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """What a worker hands a job: its settings and its own sessionmaker (no Redis needed by these jobs)."""
    return {"settings": settings, "sessionmaker": sessionmaker, "redis": None}
