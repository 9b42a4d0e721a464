"""Rate limits: 429 with Retry-After per API key and per intake key, shared by API processes via Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.api.app import create_app
from shared.config import Settings
from tests.conftest import OrgFixture


@pytest.fixture
async def limited_pair(settings: Settings) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two API processes' worth of apps sharing one Redis, with a small limit: 1/s, burst 3."""
    strict = settings.model_copy(
        update={
            "rate_limit_api_per_second": 1.0,
            "rate_limit_api_burst": 3,
            "rate_limit_intake_per_second": 1.0,
            "rate_limit_intake_burst": 3,
        }
    )
    clients: list[httpx.AsyncClient] = []
    managers: list[Any] = []
    for _ in range(2):
        manager = LifespanManager(create_app(strict))
        app = await manager.__aenter__()
        managers.append(manager)
        clients.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=app.app), base_url="https://t.test"))
    yield clients
    for client in clients:
        await client.aclose()
    for manager in managers:
        await manager.__aexit__(None, None, None)


async def test_api_key_limit_is_shared_across_processes(
    limited_pair: list[httpx.AsyncClient], org: OrgFixture, other_org: OrgFixture
) -> None:
    first, second = limited_pair
    answers = [await (first if i % 2 else second).get("/v1/me", headers=org.headers) for i in range(5)]
    codes = [answer.status_code for answer in answers]
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    limited = next(answer for answer in answers if answer.status_code == 429)
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    # another key has its own budget
    assert (await first.get("/v1/me", headers=other_org.headers)).status_code == 200


async def test_intake_key_limit(limited_pair: list[httpx.AsyncClient], org: OrgFixture) -> None:
    first, second = limited_pair
    codes = []
    for i in range(5):
        answer = await (first if i % 2 else second).post(
            f"/v1/intake/{org.intake_key}/web-form",
            json={"first_name": "Ana", "email": f"ana{i}@example.com", "submission_id": f"rl-{i}"},
        )
        codes.append(answer.status_code)
    assert codes[:3] == [202, 202, 202]
    assert codes[3:] == [429, 429]  # refused before anything is stored: the sender retries


async def test_default_limits_let_an_ils_burst_through(client: httpx.AsyncClient, org: OrgFixture) -> None:
    for i in range(120):
        answer = await client.post(
            f"/v1/intake/{org.intake_key}/web-form",
            json={"first_name": "Ana", "email": f"burst{i}@example.com", "submission_id": f"b-{i}"},
        )
        assert answer.status_code == 202, answer.text


async def test_a_read_only_route_checks_the_limit_beside_its_query_and_still_refuses(
    limited_pair: list[httpx.AsyncClient], org: OrgFixture
) -> None:
    """GET /v1/leads asks Redis while its query runs; over the limit it is a 429 all the same, also when the
    handler itself failed (a 404 for a missing lead)."""
    first, _ = limited_pair
    codes = [(await first.get("/v1/leads", headers=org.headers)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = await first.get("/v1/leads", headers=org.headers)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    missing = await first.get("/v1/leads/00000000-0000-4000-8000-000000000000", headers=org.headers)
    assert missing.status_code == 429
