"""Engine and session factory. Transactions belong to the request or the job, never to services."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util.concurrency import await_

from shared.outage import is_database_outage

CONNECT_TIMEOUT = 10
T = TypeVar("T")


def json_text(value: Any) -> str:
    """A JSONB value's text: orjson's (~5× json.dumps for an intake batch's timeline and stream events), or
    json.dumps's for what orjson refuses (an int past 64 bits, a key that is no string). The column stores the
    parsed value, so the two spellings are the same row."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def make_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """pool_pre_ping: a pooled connection that died in a PostgreSQL restart is replaced at checkout instead
    of failing the request or job that drew it (one round trip per checkout). A connect attempt gives up
    after CONNECT_TIMEOUT seconds, so an outage is answered (503, job retry) rather than waited on."""
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_serializer=json_text,
        connect_args={
            "timeout": CONNECT_TIMEOUT,
            "server_settings": SERVER_SETTINGS,
        },
    )
    engine.dialect.do_ping = _ping  # type: ignore[method-assign]
    # the ORM's INSERTs of many rows without RETURNING (an intake batch's tasks, messages, steps, applications) as
    # multi-row statements, as SQLAlchemy does for psycopg2: asyncpg's executemany runs the INSERT once per row
    engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def _ping(dbapi_connection: Any) -> bool:
    """One round trip per checkout instead of three. The asyncpg dialect wraps its ping in BEGIN … ROLLBACK
    for pgbouncer's transaction mode, which guestcard does not use; on a loaded host every round trip waits
    for the server process to be scheduled, so a read paid more for the ping than for its query."""
    try:
        await_(dbapi_connection._connection.fetchrow(";"))
    except Exception as error:
        dbapi_connection._handle_exception(error)  # raises the DBAPI error the pool recognizes as a disconnect
    return True


SERVER_SETTINGS = {"application_name": "guestcard", "timezone": "UTC"}


async def make_statement_pool(database_url: str, size: int) -> asyncpg.Pool:
    """A bare asyncpg pool for paths that run one autocommit statement and nothing else (the intake accept).

    Against the ORM session it saves the checkout ping, BEGIN and COMMIT round trips and SQLAlchemy's Python;
    a fixed size (no overflow) means a burst waits for a connection instead of opening and closing extra
    ones. No connection is opened until the first statement: the API starts while PostgreSQL is away.
    """
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    pool = await asyncpg.create_pool(
        dsn, min_size=0, max_size=size, timeout=CONNECT_TIMEOUT, server_settings=SERVER_SETTINGS, reset=_keep
    )
    assert pool is not None
    return pool


async def on_pool(pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """`work` on a pooled connection of a statement pool. A pooled connection that died in a PostgreSQL restart
    fails its first use (asyncpg does not ping); it is terminated, not given back (the pool skips the reset
    query that would otherwise have found it broken). The restart took the pool's other connections with it, so
    they are all expired (replaced at their next acquire), and `work` runs once more on a fresh one. So `work`
    must be safe to run twice: reads, or an idempotent write."""
    for attempt in (1, 2):
        connection = await pool.acquire()
        try:
            return await work(connection)
        except Exception as error:
            with contextlib.suppress(asyncpg.InterfaceError):  # one the server closed is detached already
                connection.terminate()  # mid-protocol or dead: never back into the pool
            # a termination the server sent while the connection sat idle in the pool surfaces on its next
            # use as an outage, or as asyncpg's "another operation is in progress" (InternalClientError)
            if attempt == 2 or not (is_database_outage(error) or isinstance(error, asyncpg.InternalClientError)):
                raise
            await pool.expire_connections()
        finally:
            await pool.release(connection)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def _keep(connection: asyncpg.Connection) -> None:
    """No reset query on release (asyncpg's default is one more round trip per statement): a statement pool's
    connections run single autocommit statements and never change session state, lock or listen."""


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with sessionmaker() as session, session.begin():
        yield session
