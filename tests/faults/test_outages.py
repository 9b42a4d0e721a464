"""Outages of PostgreSQL and Redis as the API and the jobs see them: classified once, answered with a 503 +
Retry-After (never a 2xx without a row, never a 500), retried by jobs, reported by /readyz per dependency,
and pooled connections that died are replaced."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.exceptions
import sqlalchemy.exc
from arq import Retry
from asgi_lifespan import LifespanManager
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.app import create_app
from services.intake.jobs import process_inbound
from services.intake.worker import retry_on_outage
from shared import clock
from shared.config import Settings
from shared.db import make_engine, make_sessionmaker
from shared.embedded import free_port
from shared.models import Contact, InboundMessage
from shared.outage import is_contention, is_database_outage, is_outage, is_redis_outage, jittered_backoff
from tests.conftest import OrgFixture

FORM = {"first_name": "Ada", "last_name": "Stone", "email": "ada.stone@example.com", "form_type": "contact"}


def _wrapped(error: Exception) -> sqlalchemy.exc.DBAPIError:
    return sqlalchemy.exc.DBAPIError("SELECT 1", None, error)


def test_outages_are_told_apart_from_bugs_and_bad_input() -> None:
    assert is_database_outage(ConnectionRefusedError(111, "refused"))
    assert is_database_outage(_wrapped(ConnectionResetError(104, "reset")))
    assert is_redis_outage(redis.exceptions.ConnectionError("Connection refused"))
    try:
        try:
            raise OSError(111, "refused")
        except OSError as inner:
            raise RuntimeError("wrapped by a library") from inner
    except RuntimeError as outer:
        assert is_outage(outer)  # the chain is walked
    assert not is_outage(ValueError("bad input"))
    assert not is_outage(KeyError("bug"))
    data_error = sqlalchemy.exc.DBAPIError("INSERT", None, Exception("value too long for type character varying"))
    assert not is_outage(data_error)


def test_backoff_is_jittered_and_capped() -> None:
    values = [jittered_backoff(attempt, base=1.0, cap=8.0) for attempt in range(1, 12) for _ in range(20)]
    assert all(0 < value <= 8.0 for value in values)
    assert len({round(value, 6) for value in values}) > 50  # not in lockstep
    assert all(0.5 <= jittered_backoff(1, base=1.0) <= 1.0 for _ in range(50))


async def test_a_job_meeting_an_outage_is_retried_and_a_bug_still_fails() -> None:
    async def outage(ctx: dict[str, Any]) -> None:
        raise _wrapped(ConnectionRefusedError(111, "refused"))

    async def bug(ctx: dict[str, Any]) -> None:
        raise ValueError("a bug")

    with pytest.raises(Retry) as retry:
        await retry_on_outage(outage)({"job_try": 3})
    assert retry.value.defer_score is not None and 0 < retry.value.defer_score <= 60_000
    with pytest.raises(ValueError, match="a bug"):
        await retry_on_outage(bug)({"job_try": 1})


async def test_a_job_postgresql_rolled_back_to_break_a_deadlock_is_retried_at_once(
    sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture
) -> None:
    """Two transactions locking two rows in opposite orders: PostgreSQL rolls one back (40P01). Its job is tried
    again within seconds, not failed (a failed send job left its renters' replies for the cron's sweep)."""
    async with sessionmaker() as setup, setup.begin():
        rows = [Contact(org_id=org.org_id), Contact(org_id=org.org_id)]
        setup.add_all(rows)
    first_id, second_id = rows[0].id, rows[1].id
    both_hold_one = asyncio.Barrier(2)

    async def locking(ctx: dict[str, Any], first: uuid.UUID, second: uuid.UUID) -> str:
        async with sessionmaker() as session, session.begin():
            for index, contact_id in enumerate((first, second)):
                await session.execute(select(Contact.id).where(Contact.id == contact_id).with_for_update())
                if index == 0:
                    await both_hold_one.wait()
        return "done"

    job = retry_on_outage(locking)
    outcomes = await asyncio.gather(
        job({"job_try": 1}, first_id, second_id), job({"job_try": 1}, second_id, first_id), return_exceptions=True
    )
    retried = [outcome for outcome in outcomes if isinstance(outcome, Retry)]
    assert sorted(map(type, outcomes), key=str) == sorted([str, Retry], key=str)
    assert len(retried) == 1 and retried[0].defer_score is not None and 0 < retried[0].defer_score <= 5_000
    assert is_contention(retried[0].__cause__) and not is_outage(retried[0].__cause__)


def _dead_postgres() -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/guestcard"


def _dead_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
async def app_with(settings: Settings) -> AsyncIterator[Any]:
    """An app on the given (possibly dead) servers; several can be opened in one test."""
    managers: list[LifespanManager] = []
    clients: list[httpx.AsyncClient] = []

    async def open_client(**urls: str) -> httpx.AsyncClient:
        manager = LifespanManager(create_app(settings.model_copy(update=urls)))
        await manager.__aenter__()
        managers.append(manager)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="https://guestcard.test")
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.aclose()
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)


async def test_postgres_down_intake_is_a_503_with_retry_after_and_readiness_degrades(
    app_with: Any, org: OrgFixture
) -> None:
    client = await app_with(database_url=_dead_postgres())
    response = await client.post(f"/v1/intake/{org.intake_key}/web-form", json=FORM)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"] == "application/problem+json"
    listing = await client.get("/v1/leads", headers=org.headers)
    assert listing.status_code == 503
    assert (await client.get("/healthz")).status_code == 200  # liveness is not readiness
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"].startswith("unreachable")
    assert body["checks"]["redis"] == "ok"


async def test_redis_down_intake_is_still_stored_and_acknowledged_and_readiness_degrades(
    app_with: Any, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The enqueue after commit fails and is tolerated: the row is committed, the sweep will queue it."""
    client = await app_with(redis_url=_dead_redis())
    form = {**FORM, "submission_id": uuid.uuid4().hex}
    response = await client.post(f"/v1/intake/{org.intake_key}/web-form", json=form)
    assert response.status_code == 202, response.text
    inbound_id = uuid.UUID(response.json()["inbound_id"])
    async with sessionmaker() as session:
        status = await session.scalar(select(InboundMessage.status).where(InboundMessage.id == inbound_id))
    assert status == "received"
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"] == "ok" and checks["redis"].startswith("unreachable")
    assert checks["worker"] == "unknown"


async def test_pooled_connections_killed_by_a_restart_are_replaced(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, servers: dict[str, str]
) -> None:
    """What a PostgreSQL restart does to the pool: every server connection dies. The next requests work."""
    for _ in range(3):
        assert (await client.get("/v1/leads", headers=org.headers)).status_code == 200
    database = settings.database_url.rsplit("/", 1)[1].split("?")[0] if settings.database_url else ""
    engine = make_engine(servers["server_url"], pool_size=1)
    try:
        async with engine.connect() as connection:
            killed = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND application_name = 'guestcard' AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
    finally:
        await engine.dispose()
    assert killed and killed > 0
    for _ in range(5):
        response = await client.get("/v1/leads", headers=org.headers)
        assert response.status_code == 200, response.text


async def test_process_inbound_during_a_postgres_outage_is_retried_not_failed(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture
) -> None:
    """A job in flight when PostgreSQL goes away raises arq Retry; the row stays `received` for later."""
    inbound_id = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        session.add(
            InboundMessage(
                id=inbound_id,
                org_id=org.org_id,
                kind="web-form",
                delivery_key=f"test:{inbound_id}",
                content_type="application/json",
                headers={},
                query={},
                body=json.dumps(FORM).encode(),
                body_size=10,
                received_at=clock.now(),
                status="received",
            )
        )
    dead = make_engine(_dead_postgres(), pool_size=1)
    ctx = {"settings": settings, "sessionmaker": make_sessionmaker(dead), "job_try": 1, "max_tries": 8}
    try:
        with pytest.raises(Retry):
            await retry_on_outage(process_inbound)(ctx, str(inbound_id))
    finally:
        await dead.dispose()
    async with sessionmaker() as session:
        row = await session.get(InboundMessage, inbound_id)
    assert row is not None and row.status == "received"


async def test_readiness_reports_the_worker_heartbeat(client: httpx.AsyncClient, settings: Settings) -> None:
    """A running worker refreshes arq's health-check key; /readyz shows it, and its absence, without
    making the API unready (intake is stored without a worker)."""
    import asyncio
    import contextlib

    from arq import func

    from services.intake.jobs import heartbeat
    from services.intake.worker import build_worker

    worker = build_worker(
        settings, functions=[func(heartbeat)], cron_jobs=[], on_startup=None, on_shutdown=None, handle_signals=False
    )
    task = asyncio.create_task(worker.async_run())
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while (await client.get("/readyz")).json()["checks"]["worker"] != "ok":
            assert asyncio.get_running_loop().time() < deadline, "no heartbeat seen"
            assert not task.done()
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # the poll loop is gone, so no job starts now; one caught mid-flight settles (maybe cancelled) here,
        # or arq's close() would re-raise its CancelledError before removing the heartbeat
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        worker.tasks.clear()
        await worker.close()  # a clean stop removes the heartbeat at once
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["worker"] == "absent"
