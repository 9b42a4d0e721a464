"""The API key → principal cache: a hit saves a query, and whatever stops a key stops it at once, in this
process and (through Redis) in the others."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import redis.asyncio as aioredis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.auth import cache as principal_cache
from services.api.auth.cache import PrincipalCache
from services.api.auth.keys import hash_secret
from services.api.auth.service import Principal
from shared.config import Settings
from shared.enums import Role
from shared.models import ApiKey
from tests.conftest import OrgFixture


def _principal(user_id: uuid.UUID | None = None) -> Principal:
    return Principal(org_id=uuid.uuid4(), role=Role.agent, key_id=uuid.uuid4(), user_id=user_id)


async def _key(client: httpx.AsyncClient, org: OrgFixture, **body: str) -> tuple[str, dict[str, str]]:
    created = await client.post("/v1/api-keys", json={"name": "cached", "role": "agent", **body}, headers=org.headers)
    assert created.status_code == 201, created.text
    return created.json()["id"], {"Authorization": f"Bearer {created.json()['key']}"}


async def test_a_cached_key_is_served_without_the_database_until_it_expires(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    key_id, headers = await _key(client, org)
    assert (await client.get("/v1/leads", headers=headers)).status_code == 200  # now cached
    # a revoke behind the API's back (raw SQL) is not seen while the entry lives: proof the hit skips the query
    async with sessionmaker() as session, session.begin():
        await session.execute(update(ApiKey).where(ApiKey.id == uuid.UUID(key_id)).values(revoked_at=ApiKey.created_at))
    assert (await client.get("/v1/leads", headers=headers)).status_code == 200
    principal_cache.cache().clear()  # what the TTL does a few seconds later
    assert (await client.get("/v1/leads", headers=headers)).status_code == 401


async def test_revoking_a_cached_key_stops_it_at_once(client: httpx.AsyncClient, org: OrgFixture) -> None:
    key_id, headers = await _key(client, org)
    for _ in range(2):
        assert (await client.get("/v1/leads", headers=headers)).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=org.headers)).status_code == 200
    assert (await client.get("/v1/leads", headers=headers)).status_code == 401
    assert (await client.get("/v1/leads", headers=headers)).status_code == 401  # a refusal is never cached


async def test_deactivating_a_user_stops_its_cached_keys_at_once(client: httpx.AsyncClient, org: OrgFixture) -> None:
    user = await client.post("/v1/users", json={"email": "cached@example.com", "name": "Cee"}, headers=org.headers)
    assert user.status_code == 201, user.text
    _, headers = await _key(client, org, user_id=user.json()["id"])
    assert (await client.get("/v1/leads", headers=headers)).status_code == 200
    gone = await client.patch(f"/v1/users/{user.json()['id']}", json={"active": False}, headers=org.headers)
    assert gone.status_code == 200, gone.text
    assert (await client.get("/v1/leads", headers=headers)).status_code == 401


def test_entries_expire_and_a_drop_beats_a_read_that_started_before_it() -> None:
    now = [100.0]
    cache = PrincipalCache(ttl=5, clock=lambda: now[0])
    principal = _principal()
    cache.put("h", principal, cache.generation)
    assert cache.get("h") is principal
    now[0] += 5
    assert cache.get("h") is None

    # a request reads the key from the database, a revoke commits meanwhile: its stale answer is not kept
    generation = cache.generation
    cache.drop(key_ids=[principal.key_id])
    cache.put("h", principal, generation)
    assert cache.get("h") is None

    off = PrincipalCache(ttl=0)
    off.put("h", principal, off.generation)
    assert off.get("h") is None


def test_drop_by_user_takes_every_key_of_that_user_only() -> None:
    cache = PrincipalCache(ttl=60)
    user = uuid.uuid4()
    mine, also_mine, other, orgwide = _principal(user), _principal(user), _principal(uuid.uuid4()), _principal()
    for name, principal in (("a", mine), ("b", also_mine), ("c", other), ("d", orgwide)):
        cache.put(name, principal, cache.generation)
    cache.drop(user_ids=[user])
    assert [cache.get(name) for name in "abcd"] == [None, None, other, orgwide]


async def test_another_process_drop_arrives_through_redis(settings: Settings) -> None:
    """What a second API process sees: the invalidation it did not make, published after the commit."""
    assert settings.redis_url
    redis = aioredis.from_url(settings.redis_url)
    cache = principal_cache.cache()
    listener = asyncio.create_task(principal_cache.listen(redis))
    try:
        principal = _principal()
        key_hash = hash_secret(f"gck_{uuid.uuid4().hex}")
        cache.put(key_hash, principal, cache.generation)
        assert cache.get(key_hash) is principal
        message = json.dumps({"key_ids": [str(principal.key_id)], "user_ids": []})
        for _ in range(500):  # until the listener has subscribed and handled it
            await redis.publish(principal_cache.CHANNEL, message)
            if cache.get(key_hash) is None:
                break
            await asyncio.sleep(0.01)
        assert cache.get(key_hash) is None
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await redis.aclose()
