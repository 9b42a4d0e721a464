"""The schema is built by Alembic only, and every migration can be undone and redone."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from shared.migrate import alembic_config, downgrade, head_revision, upgrade
from shared.models import Base
from tests.conftest import _recreate_database


def test_downgrade_to_base_and_upgrade_again_round_trips(servers: dict[str, str]) -> None:
    name = f"guestcard_mig_{uuid.uuid4().hex[:8]}"
    asyncio.run(_recreate_database(servers["server_url"], name))
    url = make_url(servers["server_url"]).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        downgrade(url, "base")
        upgrade(url)
        command.check(alembic_config(url))  # raises when models and migrations disagree
    finally:
        asyncio.run(_recreate_database(servers["server_url"], name, drop_only=True))


def test_models_match_the_migrated_schema(servers: dict[str, str]) -> None:
    """The test database was built by `alembic upgrade head`; the ORM must see no difference."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def diff() -> list[object]:
        engine = create_async_engine(servers["database_url"])
        async with engine.connect() as connection:
            result = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        await engine.dispose()
        return list(result)

    assert asyncio.run(diff()) == []
    assert head_revision() is not None
