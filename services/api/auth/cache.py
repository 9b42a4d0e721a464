"""Short-lived caches of credentials: API key → principal (one query less on every request), and a sender's
signing secret (one query and one decrypt less on every signed webhook).

Entries live `ttl` seconds (settings.principal_cache_seconds; 0 turns the cache off). Whatever can stop a
key drops its entries at once in this process and, after the commit, in every API process:
- a key revoke drops that key;
- a user's deactivation drops that user's keys;
- setting or removing a sender's signing secret drops that secret (also the remembered "none set").
The other processes hear it through Redis pub/sub. With Redis away, the TTL bounds how long a revoked key
still works there.

Dropping is always safe. It happens twice:
1. when the change is made;
2. after its commit, so a request that read the key meanwhile cannot put the old answer back for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from shared.logging import get_logger

if TYPE_CHECKING:
    from services.api.auth.service import Principal

log = get_logger(__name__)

CHANNEL = "guestcard:auth:invalidate"
MAX_ENTRIES = 10_000
_PENDING = "auth_invalidations"


class PrincipalCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}
        self.generation = 0  # moves on every drop: an answer read from the database before it is not kept

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self._entries.pop(key_hash, None)
            return None
        return entry[1]

    def put(self, key_hash: str, principal: Principal, generation: int) -> None:
        """Keep `principal`, read from the database when `generation` was current, unless a drop came since."""
        if self.ttl <= 0 or generation != self.generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # a flood of distinct keys: start over rather than track recency
        self._entries[key_hash] = (self.clock() + self.ttl, principal)

    async def get_or_read(self, key_hash: str, read: Callable[[], Awaitable[Principal | None]]) -> Principal | None:
        """The kept principal, or `read()`'s (None: no live key), kept unless a drop came while it was read."""
        principal = self.get(key_hash)
        if principal is not None:
            return principal
        generation = self.generation
        principal = await read()
        if principal is not None:
            self.put(key_hash, principal, generation)
        return principal

    def drop(self, key_ids: list[uuid.UUID] | None = None, user_ids: list[uuid.UUID] | None = None) -> None:
        self.generation += 1
        keys, users = set(key_ids or ()), set(user_ids or ())
        for key_hash, (_, principal) in list(self._entries.items()):
            if principal.key_id in keys or (principal.user_id is not None and principal.user_id in users):
                self._entries.pop(key_hash, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


class SecretCache:
    """`org:provider` → the decrypted signing secret, or None when the organization has not set one."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, str | None]] = {}
        self.generation = 0

    def get(self, key: str) -> tuple[bool, str | None]:
        """(found, secret): found is False when the database must be asked."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            return False, None
        return True, entry[1]

    def put(self, key: str, secret: str | None, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (self.clock() + self.ttl, secret)

    def drop(self, keys: list[str]) -> None:
        self.generation += 1
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


def secret_key(org_id: uuid.UUID, provider: str) -> str:
    return f"{org_id}:{provider}"


_cache = PrincipalCache(ttl=0)
_secrets = SecretCache(ttl=0)


def cache() -> PrincipalCache:
    return _cache


def secrets() -> SecretCache:
    return _secrets


def configure(ttl: float) -> PrincipalCache:
    _cache.ttl = ttl
    _cache.clear()
    _secrets.ttl = ttl
    _secrets.clear()
    return _cache


def invalidate(
    session: AsyncSession, *, key_ids: list[uuid.UUID] | None = None, user_ids: list[uuid.UUID] | None = None
) -> None:
    """Call where a key stops working: drops now, and again (everywhere) once the request commits."""
    _cache.drop(key_ids, user_ids)
    pending = session.info.setdefault(_PENDING, {})
    pending.setdefault("key_ids", []).extend(str(k) for k in key_ids or ())
    pending.setdefault("user_ids", []).extend(str(u) for u in user_ids or ())


def invalidate_secret(session: AsyncSession, org_id: uuid.UUID, provider: str) -> None:
    """Call where a sender's signing secret is set or removed: drops now, and everywhere after the commit."""
    key = secret_key(org_id, provider)
    _secrets.drop([key])
    session.info.setdefault(_PENDING, {}).setdefault("secrets", []).append(key)


async def after_commit(session: AsyncSession, redis: Redis | None) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    _apply(pending)
    if redis is None:
        return
    try:
        await redis.publish(CHANNEL, json.dumps(pending))
    except Exception as error:  # the TTL still bounds the other processes
        log.warning("auth.cache_publish_failed", error=type(error).__name__)


def _apply(message: dict[str, list[str]]) -> None:
    key_ids, user_ids = message.get("key_ids", []), message.get("user_ids", [])
    if key_ids or user_ids:
        _cache.drop([uuid.UUID(k) for k in key_ids], [uuid.UUID(u) for u in user_ids])
    if message.get("secrets"):
        _secrets.drop([str(key) for key in message["secrets"]])


async def listen(redis: Redis) -> None:
    """Drop what other API processes invalidated; reconnects until cancelled."""
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                while True:  # get_message's own timeout: an idle channel is not a broken one
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        with contextlib.suppress(ValueError, TypeError, AttributeError):
                            _apply(json.loads(message["data"]))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("auth.cache_listen_failed", error=type(error).__name__)
            _cache.clear()  # we may have missed a revoke while away
            _secrets.clear()
            await asyncio.sleep(1)


def start_listener(redis: Redis | None) -> asyncio.Task[Any] | None:
    if redis is None or _cache.ttl <= 0:
        return None
    return asyncio.create_task(listen(redis), name="auth-cache-listener")
