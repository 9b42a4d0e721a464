"""The accept path's own machinery: the signing-secret cache and its invalidation, the bare statement pool
surviving a PostgreSQL restart, the ASGI fast path handing the unusual to the route, and odd input kept."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import services.api.intake.service as intake_service
from services.api.auth import cache as credential_cache
from services.api.auth.cache import SecretCache
from shared.config import Settings
from shared.models import Integration
from tests.conftest import OrgFixture
from tests.intake.test_intake_support import rows_for

POSTMARK = {
    "FromFull": {"Email": "dana@example.com", "Name": "Dana"},
    "Subject": "2BR?",
    "TextBody": "Hi",
    "Headers": [],
}


def _postmark(org: OrgFixture, serial: int) -> tuple[str, dict[str, object]]:
    return f"/v1/intake/{org.intake_key}/postmark", {**POSTMARK, "MessageID": f"pm-{serial}-{uuid.uuid4().hex}"}


async def _post(client: httpx.AsyncClient, org: OrgFixture, password: str | None, serial: int) -> int:
    path, payload = _postmark(org, serial)
    auth = httpx.BasicAuth("postmark", password) if password else None
    return (await client.post(path, json=payload, auth=auth)).status_code


async def _put_secret(client: httpx.AsyncClient, org: OrgFixture, password: str) -> None:
    put = await client.put(
        "/v1/integrations/postmark", headers=org.headers, json={"signing_secret": f"postmark:{password}"}
    )
    assert put.status_code == 204, put.text


async def test_setting_changing_and_removing_a_secret_take_effect_at_once(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    assert await _post(client, org, None, 1) == 200  # no secret set: the intake key alone (and "none" is kept)
    await _put_secret(client, org, "first")
    assert await _post(client, org, None, 2) == 401  # the kept "none set" was dropped by the PUT
    assert await _post(client, org, "first", 3) == 200  # now cached
    await _put_secret(client, org, "second")
    assert await _post(client, org, "first", 4) == 401
    assert await _post(client, org, "second", 5) == 200
    assert (await client.delete("/v1/integrations/postmark", headers=org.headers)).status_code == 204
    assert await _post(client, org, None, 6) == 200


async def test_a_cached_secret_is_served_without_the_database_until_it_expires(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await _put_secret(client, org, "kept")
    assert await _post(client, org, "kept", 1) == 200
    async with sessionmaker() as session, session.begin():  # behind the API's back: no invalidation
        await session.execute(
            update(Integration)
            .where(Integration.org_id == org.org_id, Integration.provider == "postmark")
            .values(signing_secret="postmark:changed")  # the column type encrypts it
        )
    assert await _post(client, org, "kept", 2) == 200  # proof a hit skips the query
    credential_cache.secrets().clear()  # what the TTL does a few seconds later
    assert await _post(client, org, "kept", 3) == 401
    assert await _post(client, org, "changed", 4) == 200


def test_secret_entries_expire_and_a_drop_beats_a_read_that_started_before_it() -> None:
    now = [10.0]
    cache = SecretCache(ttl=5, clock=lambda: now[0])
    cache.put("org:twilio", None, cache.generation)
    assert cache.get("org:twilio") == (True, None)  # "none set" is an answer too
    now[0] += 5
    assert cache.get("org:twilio") == (False, None)
    generation = cache.generation
    cache.drop(["org:twilio"])
    cache.put("org:twilio", "stale", generation)
    assert cache.get("org:twilio") == (False, None)


async def test_another_process_secret_change_arrives_through_redis(settings: Settings) -> None:
    assert settings.redis_url
    redis = aioredis.from_url(settings.redis_url)
    secrets = credential_cache.secrets()
    listener = asyncio.create_task(credential_cache.listen(redis))
    key = credential_cache.secret_key(uuid.uuid4(), "twilio")
    try:
        secrets.put(key, "old", secrets.generation)
        assert secrets.get(key) == (True, "old")
        for _ in range(500):  # until the listener has subscribed and handled it
            await redis.publish(credential_cache.CHANNEL, json.dumps({"secrets": [key]}))
            if not secrets.get(key)[0]:
                break
            await asyncio.sleep(0.01)
        assert secrets.get(key) == (False, None)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await redis.aclose()


async def test_the_statement_pool_recovers_from_terminated_connections(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """What a PostgreSQL restart does to the pool's connections: the next delivery is still stored."""
    path = f"/v1/intake/{org.intake_key}/web-form"
    first = await client.post(path, json={"email": "one@example.com", "message": "first"})
    assert first.status_code == 202, first.text
    async with sessionmaker() as session, session.begin():
        ended = await session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND application_name = 'guestcard'"
            )
        )
    assert ended and ended >= 1  # among them the pool's connection that stored the first delivery
    for serial in range(5):  # none of them meets a connection the termination left broken in the pool
        after = await client.post(path, json={"email": f"after{serial}@example.com", "message": "after"})
        assert after.status_code == 202, after.text
    assert len(await rows_for(sessionmaker, org)) == 6


async def test_the_unusual_goes_to_the_route_and_keeps_its_answers(client: httpx.AsyncClient, org: OrgFixture) -> None:
    too_long = await client.post(f"/v1/intake/{'k' * 201}/web-form", json={"email": "a@example.com"})
    assert too_long.status_code == 422
    assert too_long.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in too_long.json()["errors"]] == ["path.intake_key"]
    wrong_method = await client.put(f"/v1/intake/{org.intake_key}/web-form", json={})
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"
    refused = await client.post(f"/v1/intake/{org.intake_key}/twilio/sms", content=b"From=%2B15125550100")
    assert refused.status_code == 401  # the fast path's own refusals are the same problem documents
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 401 and "x-request-id" in refused.headers


async def test_fast_path_requests_are_counted_under_the_route_template(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    accepted = await client.post(f"/v1/intake/{org.intake_key}/web-form", json={"email": "count@example.com"})
    assert accepted.status_code == 202 and "x-request-id" in accepted.headers
    exposition = (await client.get("/metrics")).text
    routes = {
        sample.labels.get("route")
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.labels.get("status") == "2xx"
    }
    assert "/v1/intake/{intake_key}/{kind}" in routes
    assert not any(route and org.intake_key in route for route in routes)  # never the raw path: it holds the key


async def test_a_nul_in_the_query_string_is_kept_not_refused(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.post(f"/v1/intake/{org.intake_key}/web-form?utm_source=a%00b", json={"email": "n@x.co"})
    assert response.status_code == 202, response.text
    [row] = await rows_for(sessionmaker, org)
    assert row.query == {"utm_source": "a\ufffdb"}


async def test_a_webhook_with_warm_caches_is_one_statement(
    client: httpx.AsyncClient, org: OrgFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path's shape (docs/architecture.md): once the intake key's organization and the signing secret
    are cached, a delivery is the store and nothing else in PostgreSQL."""
    await _put_secret(client, org, "warm")
    assert await _post(client, org, "warm", 1) == 200  # fills both caches
    statements: list[str] = []
    fetch = intake_service._fetch

    async def counted(pool: Any, sql: str, *args: object) -> Any:
        statements.append(sql)
        return await fetch(pool, sql, *args)

    monkeypatch.setattr(intake_service, "_fetch", counted)
    assert await _post(client, org, "warm", 2) == 200
    assert statements == [intake_service.STORE_SQL]
