"""The hot paths' script calls on kept connections (shared/redis_calls.py): one connection reused call after
call, never one left with an unread reply, a script Redis forgot loaded again."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from shared import redis_calls
from shared.config import Settings
from shared.queue import open_queue
from shared.redis_calls import Script, kept, run_script

ECHO = Script("return ARGV[1]")


@pytest.fixture
async def queue(settings: Settings) -> AsyncIterator[ArqRedis]:
    assert settings.redis_url
    client = open_queue(settings.redis_url)
    try:
        yield client
    finally:
        await redis_calls.close(client)
        await client.aclose()


async def test_calls_reuse_one_kept_connection_and_error_replies_keep_it(queue: ArqRedis) -> None:
    connection_id = await kept(queue).execute("CLIENT", "ID")
    assert await run_script(queue, ECHO, [], ["a"]) == b"a"
    failing = Script(f"return redis.error_reply('refused {uuid.uuid4().hex}')")
    with pytest.raises(ResponseError, match="refused"):
        await run_script(queue, failing, [], [])
    assert await run_script(queue, ECHO, [], ["b"]) == b"b"
    assert await kept(queue).execute("CLIENT", "ID") == connection_id  # one connection all along
    assert len(queue.connection_pool._in_use_connections) == 0  # none taken from the pool


async def test_a_call_cancelled_mid_reply_never_leaves_its_reply_for_the_next_call(queue: ArqRedis) -> None:
    """The reason redis-py's pool reads every socket it hands out; here the connection is dropped instead."""
    key = f"guestcard:test-calls:{uuid.uuid4().hex}"  # never written: the BLPOP waits
    connection_id = await kept(queue).execute("CLIENT", "ID")  # one kept connection, which the BLPOP below takes
    waiting = asyncio.ensure_future(kept(queue).execute("BLPOP", key, 2))
    deadline = asyncio.get_running_loop().time() + 5
    while b"cmd=blpop" not in await queue.execute_command("CLIENT", "LIST", "ID", connection_id):
        assert asyncio.get_running_loop().time() < deadline, "the BLPOP never reached Redis"
        await asyncio.sleep(0.01)  # Redis is blocking on it: its reply is still to come
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    # had the connection been kept, this call would wait behind the BLPOP and read its empty reply
    assert await run_script(queue, ECHO, [], ["mine"]) == b"mine"


async def test_a_script_redis_does_not_know_is_loaded_and_run(queue: ArqRedis) -> None:
    fresh = Script(f"return '{uuid.uuid4().hex}'")
    assert (await queue.script_exists(fresh.sha)) == [False]
    assert await run_script(queue, fresh, [], []) == fresh.source.split("'")[1].encode()
    assert (await queue.script_exists(fresh.sha)) == [True]
