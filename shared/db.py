"""Engine and session factory. Transactions belong to the request or the job, never to services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

CONNECT_TIMEOUT = 10


def make_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """pool_pre_ping: a pooled connection that died in a PostgreSQL restart is replaced at checkout instead
    of failing the request or job that drew it (one round trip per checkout). A connect attempt gives up
    after CONNECT_TIMEOUT seconds, so an outage is answered (503, job retry) rather than waited on."""
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={
            "timeout": CONNECT_TIMEOUT,
            "server_settings": {"application_name": "guestcard", "timezone": "UTC"},
        },
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with sessionmaker() as session, session.begin():
        yield session
