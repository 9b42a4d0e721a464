"""Redis script calls on the hot paths (the rate limit of every request, the intake's wake), on kept connections
outside redis-py's pool.

redis-py's asyncio pool hands out a connection under a lock and first reads its socket (`can_read_destructive`)
to make sure nothing unread is waiting on it: on this 2-core class of host ~70-100 µs of CPU per command,
more than the command itself on a kept connection (PING through the pool 114-150 µs of CPU, on a connection of
its own 48-66 µs). A read costs one such call (the rate limit) and an accepted webhook two (the rate limit and
the wake), so this module keeps its own idle list of redis-py connections (`redis.asyncio.Connection`: RESP,
hiredis, the queue's own settings and timeouts) and skips the check by keeping one rule: a connection goes back
to the list only after a complete reply (an error reply included). Anything else (a timeout, a reset, a
cancellation) disconnects it, so no connection on the list ever holds an unread reply.

A connection that died in a Redis restart fails its next command before any reply: the call is made once more on
a fresh connection and the other idle ones are dropped (they died with it), as redis-py's pool would have
reconnected. Scripts run by SHA; a Redis that does not know one (restarted, or flushed) gets it loaded once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import weakref
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

KEEP_IDLE = 16  # connections kept between calls (more may be open at once under a burst; the rest are closed)


@dataclass(frozen=True)
class Script:
    """A Lua script and the SHA-1 Redis names it by."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())  # noqa: S324 - Redis's name


class KeptConnections:
    """Connections of one Redis client's settings, each used by one call at a time and kept while idle."""

    def __init__(self, pool: ConnectionPool) -> None:
        settings = dict(pool.connection_kwargs)
        # the client's socket timeout, kept for the whole call: redis-py applies it to the send (a task per
        # command, asyncio.wait_for) and again to the read; one deadline around both costs a timer
        self._timeout: float | None = settings.pop("socket_timeout", None)
        self._new = functools.partial(pool.connection_class, **settings)
        self._idle: list[AbstractConnection] = []

    async def execute(self, *args: Any) -> Any:
        while True:
            was_kept = bool(self._idle)
            connection = self._idle.pop() if was_kept else self._new()
            try:
                async with asyncio.timeout(self._timeout):
                    await connection.send_command(*args, check_health=False)
                    reply = await connection.read_response()
            except ResponseError:  # a whole reply (an error one): the connection is in step
                await self._keep(connection)
                raise
            except ConnectionError:
                await connection.disconnect(nowait=True)
                if not was_kept:
                    raise  # a fresh connection failed: Redis is away
                await self.aclose()  # a restart took every kept connection with it: once more on a fresh one
                continue
            except BaseException:  # a timeout or a cancellation mid-command: a reply may still be on its way
                await connection.disconnect(nowait=True)
                raise
            await self._keep(connection)
            return reply

    async def _keep(self, connection: AbstractConnection) -> None:
        if len(self._idle) < KEEP_IDLE:
            self._idle.append(connection)
        else:
            await connection.disconnect(nowait=True)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.disconnect(nowait=True)


_KEPT: weakref.WeakKeyDictionary[Redis, KeptConnections] = weakref.WeakKeyDictionary()


def kept(client: Redis) -> KeptConnections:
    """The kept connections of `client`'s settings (one set per client, closed by `close`)."""
    found = _KEPT.get(client)
    if found is None:
        found = _KEPT[client] = KeptConnections(client.connection_pool)
    return found


async def close(client: Redis) -> None:
    """Close what `kept(client)` holds (with the client: the API's lifespan end)."""
    found = _KEPT.pop(client, None)
    if found is not None:
        await found.aclose()


async def run_script(client: Redis, script: Script, keys: list[str] | tuple[str, ...], args: list[Any]) -> Any:
    """EVALSHA on a kept connection; the script is loaded first when Redis does not know it."""
    connections = kept(client)
    try:
        return await connections.execute("EVALSHA", script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await connections.execute("SCRIPT", "LOAD", script.source)
        return await connections.execute("EVALSHA", script.sha, len(keys), *keys, *args)
