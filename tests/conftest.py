"""Test harness: real PostgreSQL and Redis (embedded unless DATABASE_URL / REDIS_URL are set).

Each run gets a fresh database migrated with `alembic upgrade head` and its own queue name. Tests isolate
by organization (every row is org-scoped), not by rolled-back transactions, because intake and
concurrency tests need real commits seen by other connections, the worker and the API.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import settings as settings_profiles
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.clock import FakeClock, use_clock
from shared.config import Settings
from shared.db import make_engine, make_sessionmaker

ROOT = Path(__file__).resolve().parent.parent
# property-based tests explore new inputs on developers' machines and replay a fixed set in CI (CI=true), so
# a red CI run is reproducible and a merge is never blocked by a fresh random find (run locally to explore)
settings_profiles.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings_profiles.load_profile("ci")
# a Tuesday afternoon in US Eastern time: inside default working and quiet-hours windows
CLOCK_START = datetime(2026, 6, 2, 18, 0, tzinfo=UTC)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _recreate_database(server_url: str, name: str, drop_only: bool = False) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, str]]:
    from shared.embedded import ensure_servers

    data_dir = Path(os.environ.get("GUESTCARD_TEST_DATA_DIR", ROOT / ".data" / "test"))
    # shared: a concurrent test run on the same data folder keeps the server until the last one exits
    started = ensure_servers(
        data_dir, os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL"), shared_postgres=True
    )
    assert started.database_url and started.redis_url
    test_db = f"guestcard_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_recreate_database(started.database_url, test_db))
    test_url = make_url(started.database_url).set(database=test_db).render_as_string(hide_password=False)
    from shared.migrate import upgrade

    upgrade(test_url)
    try:
        yield {"database_url": test_url, "redis_url": started.redis_url, "server_url": started.database_url}
    finally:
        asyncio.run(_recreate_database(started.database_url, test_db, drop_only=True))
        started.stop()


@pytest.fixture(scope="session")
def settings(servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=servers["database_url"],
        redis_url=servers["redis_url"],
        GUESTCARD_DATA_DIR=tmp_path_factory.mktemp("data"),
        GUESTCARD_SERVICE_TOKEN="test-service-token",
        GUESTCARD_PUBLIC_URL="https://guestcard.test",
        GUESTCARD_QUEUE=f"guestcard:test:{uuid.uuid4().hex[:8]}",
        GUESTCARD_LOG_JSON=True,
        GUESTCARD_WORKER_POLL_DELAY=0.01,
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    assert settings.database_url
    engine = make_engine(settings.database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture(scope="session")
def fastapi_app(settings: Settings) -> Any:
    from services.api.app import create_app

    return create_app(settings)


@pytest.fixture(scope="session")
async def app(fastapi_app: Any) -> AsyncIterator[Any]:
    async with LifespanManager(fastapi_app) as manager:
        yield manager.app


@pytest.fixture
def app_state(fastapi_app: Any, app: Any) -> Any:
    """The running app's AppState (engine, queue, settings), for tests that look inside."""
    return fastapi_app.state.guestcard


@pytest.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://guestcard.test") as http:
        yield http


class OrgFixture:
    """A fresh organization with its admin key: the unit of test isolation."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.org_id: uuid.UUID = data["org_id"]
        self.api_key: str = data["api_key"]
        self.intake_key: str = data["intake_key"]
        self.admin_user_id: uuid.UUID = data["admin_user_id"]
        self.headers = {"Authorization": f"Bearer {self.api_key}"}


async def make_org(sessionmaker: async_sessionmaker[AsyncSession], name: str = "Test Org") -> OrgFixture:
    from services.api.auth.service import create_organization

    async with sessionmaker() as session, session.begin():
        created = await create_organization(session, name)
        return OrgFixture(
            {
                "org_id": created.org.id,
                "api_key": created.api_key,
                "intake_key": created.intake_key,
                "admin_user_id": created.admin.id,
            }
        )


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession]) -> OrgFixture:
    return await make_org(sessionmaker)


@pytest.fixture
async def other_org(sessionmaker: async_sessionmaker[AsyncSession]) -> OrgFixture:
    return await make_org(sessionmaker, "Other Org")


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """The process clock stopped at CLOCK_START for this test; move it with clock.advance(minutes=…)."""
    fake = FakeClock(CLOCK_START)
    with use_clock(fake):
        yield fake
