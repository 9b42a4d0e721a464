"""Is this error an outage of PostgreSQL or Redis (retry later) rather than a bug or bad input?

One rule for the API (503 + Retry-After instead of a 500), the worker's jobs (arq Retry instead of a failed
job) and the worker's Redis loop (reconnect instead of exiting). It walks the exception chain, because
SQLAlchemy wraps the driver's error and asyncpg wraps the socket's.
"""

from __future__ import annotations

import random

import asyncpg
import redis.exceptions
import sqlalchemy.exc

# asyncpg: connection refused / reset / closed, "the database system is starting up / shutting down",
# "terminating connection due to administrator command", too many connections (a restart storm)
_DATABASE = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,  # "connection is closed", "cannot perform operation: another operation…"
    sqlalchemy.exc.TimeoutError,  # the pool had no connection to give within pool_timeout
)
_REDIS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_NETWORK = (ConnectionError, TimeoutError)  # OSError subclasses a refused or reset socket raises


# the exception classes an outage surfaces as (for exception-handler registration); DBAPIError wraps them too
OUTAGE_TYPES: tuple[type[Exception], ...] = (*_DATABASE, *_REDIS, OSError)


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException] = [error]
    while pending and len(seen) < 32:
        current = pending.pop()
        if current in seen:
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)  # SQLAlchemy keeps the driver's error here
        for nested in (orig, current.__cause__, current.__context__):
            if isinstance(nested, BaseException):
                pending.append(nested)
    return seen


def is_database_outage(error: BaseException) -> bool:
    for item in _chain(error):
        if isinstance(item, sqlalchemy.exc.DBAPIError) and item.connection_invalidated:
            return True
        if isinstance(item, (*_DATABASE, *_NETWORK)):
            return True
        if isinstance(item, OSError) and item.errno is not None:  # socket errors (ENOENT for a gone socket file)
            return True
    return False


def is_redis_outage(error: BaseException) -> bool:
    return any(isinstance(item, _REDIS) for item in _chain(error))


# two transactions that each waited for the other (40P01), or a serializable one that lost (40001): PostgreSQL
# rolled this one back whole, and the same work done again succeeds
_CONTENTION = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)


def is_contention(error: BaseException) -> bool:
    """PostgreSQL rolled the transaction back to break a deadlock or a serialization conflict: retry it now."""
    return any(isinstance(item, _CONTENTION) for item in _chain(error))


def is_outage(error: BaseException) -> bool:
    """A dependency is away (a restart, a network blip): the same work succeeds later."""
    return is_redis_outage(error) or is_database_outage(error)


def jittered_backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """base·2^(attempt-1), capped, times a random factor in [0.5, 1]: many clients don't reconnect in step."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling * (0.5 + random.random() / 2)
