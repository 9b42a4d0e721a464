"""Fast fixtures for lead tests: rows inserted with Core executemany, not through the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import Contact, ContactIdentity, Lead, Property

SessionMaker = async_sessionmaker[AsyncSession]


async def insert_leads(
    sessionmaker: SessionMaker,
    org_id: uuid.UUID,
    count: int = 1,
    *,
    start: datetime | None = None,
    with_identities: bool = False,
    **lead_values: Any,
) -> list[uuid.UUID]:
    """`count` contacts with one lead each, created one second apart (newest last)."""
    start = start or datetime.now(UTC) - timedelta(days=30)
    contacts, identities, leads = [], [], []
    for n in range(count):
        contact_id, lead_id = uuid.uuid4(), uuid.uuid4()
        email, phone = f"renter{n}.{contact_id.hex[:6]}@example.org", f"+1512{n % 10_000_000:07d}"
        contacts.append(
            {
                "id": contact_id,
                "org_id": org_id,
                "kind": "tenant",
                "full_name": f"Renter{n} Test",
                "first_name": f"Renter{n}",
                "last_name": "Test",
                "primary_email": email,
                "primary_phone": phone,
            }
        )
        if with_identities:
            identities += [
                {"id": uuid.uuid4(), "org_id": org_id, "contact_id": contact_id, "kind": "email", "value": email},
                {"id": uuid.uuid4(), "org_id": org_id, "contact_id": contact_id, "kind": "phone", "value": phone},
            ]
        at = start + timedelta(seconds=n)
        leads.append(
            {
                "id": lead_id,
                "org_id": org_id,
                "contact_id": contact_id,
                "status": "new",
                "temperature": "hot",
                "source": "zillow",
                "created_at": at,
                "updated_at": at,
                "preferred_tour_times": [],
                **lead_values,
            }
        )
    async with sessionmaker() as session, session.begin():
        await session.execute(insert(Contact), contacts)
        if identities:
            await session.execute(insert(ContactIdentity), identities)
        await session.execute(insert(Lead), leads)
    return [lead["id"] for lead in leads]


async def insert_property(sessionmaker: SessionMaker, org_id: uuid.UUID, name: str = "Maple Court") -> uuid.UUID:
    property_id = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await session.execute(insert(Property).values(id=property_id, org_id=org_id, name=name))
    return property_id


async def get_lead(client: httpx.AsyncClient, headers: dict[str, str], lead_id: Any) -> httpx.Response:
    response = await client.get(f"/v1/leads/{lead_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response
