from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import ApiKey
from tests.conftest import OrgFixture


async def test_missing_key_is_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/properties")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["title"] == "Unauthorized"


async def test_unknown_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/properties", headers={"Authorization": "Bearer gck_not-a-key"})
    assert response.status_code == 401


async def test_me_names_the_organization(client: httpx.AsyncClient, org: OrgFixture) -> None:
    response = await client.get("/v1/me", headers=org.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["org_id"] == str(org.org_id)
    assert body["role"] == "admin"


async def test_key_is_shown_once_stored_hashed_and_revocable(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await client.post("/v1/api-keys", json={"name": "front end", "role": "agent"}, headers=org.headers)
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    assert secret.startswith("gck_")
    async with sessionmaker() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.id == created.json()["id"]))
    assert row is not None
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (row.key_hash, row.prefix)
    listed = await client.get("/v1/api-keys", headers=org.headers)
    assert all("key" not in item for item in listed.json())

    agent_headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/properties", headers=agent_headers)).status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{created.json()['id']}", headers=org.headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert (await client.get("/v1/properties", headers=agent_headers)).status_code == 401


async def test_agent_cannot_manage_keys_or_properties(client: httpx.AsyncClient, org: OrgFixture) -> None:
    created = await client.post("/v1/api-keys", json={"name": "agent", "role": "agent"}, headers=org.headers)
    agent_headers = {"Authorization": f"Bearer {created.json()['key']}"}
    assert (await client.get("/v1/api-keys", headers=agent_headers)).status_code == 403
    response = await client.post("/v1/properties", json={"name": "X"}, headers=agent_headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_another_organizations_key_cannot_be_revoked(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture
) -> None:
    created = await client.post("/v1/api-keys", json={"name": "mine"}, headers=org.headers)
    response = await client.delete(f"/v1/api-keys/{created.json()['id']}", headers=other_org.headers)
    assert response.status_code == 404


async def test_users_are_created_once_per_email(client: httpx.AsyncClient, org: OrgFixture) -> None:
    body = {"email": "Agent@Example.com", "name": "Agent One", "role": "agent"}
    first = await client.post("/v1/users", json=body, headers=org.headers)
    assert first.status_code == 201
    assert first.json()["email"] == "agent@example.com"
    second = await client.post("/v1/users", json=body, headers=org.headers)
    assert second.status_code == 409
