"""What the app holds for its lifetime, built in the lifespan and read by dependencies."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.config import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    queue: ArqRedis | None
    service_token: str
    # the same pool without transactions (autocommit), for @read_only routes; None: use `sessionmaker`
    read_sessionmaker: async_sessionmaker[AsyncSession] | None = None
    # one-statement paths (the intake accept): shared.db.make_statement_pool
    statement_pool: asyncpg.Pool | None = None
