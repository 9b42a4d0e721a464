"""The worker rides out a Redis restart: reconnects with backoff and picks up new jobs by itself.

Runs against a private redis-server on its own port (never the shared one), killed and restarted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from arq import func

from services.intake.worker import build_worker
from shared.config import Settings
from shared.embedded import free_port, start_redis
from shared.queue import create_queue

RUNS: list[str] = []


async def record(ctx: dict[str, Any], marker: str) -> str:
    RUNS.append(marker)
    return marker


async def eventually(condition: Callable[[], bool], within: float = 20.0) -> None:
    """Wait for a condition another process or task makes true (a deadline, not a sleep to synchronize)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        _, self.process = start_redis(self.folder, self.port)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _enqueue(url: str, queue_name: str, marker: str) -> None:
    queue = await create_queue(url)
    try:
        await queue.enqueue_job("record", marker, _job_id=f"record:{marker}", _queue_name=queue_name)
    finally:
        await queue.aclose()


async def test_worker_survives_a_redis_restart_and_resumes_by_itself(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    queue_name = f"q:{uuid.uuid4().hex}"
    worker = build_worker(
        settings.model_copy(update={"redis_url": private_redis.url}),
        functions=[func(record, max_tries=3)],
        cron_jobs=[],
        queue_name=queue_name,
        on_startup=None,
        on_shutdown=None,
        poll_delay=0.01,
        handle_signals=False,
    )
    task = asyncio.create_task(worker.async_run())
    before, after = uuid.uuid4().hex, uuid.uuid4().hex
    try:
        await _enqueue(private_redis.url, queue_name, before)
        await eventually(lambda: before in RUNS)
        private_redis.kill()  # kill -9: every connection of the worker dies
        await eventually(lambda: worker.redis_outages > 0 or task.done())
        assert not task.done(), task.exception() if task.done() else None
        private_redis.start()  # same port, as a restarted server or a failed-over address
        await _enqueue(private_redis.url, queue_name, after)
        await eventually(lambda: after in RUNS)
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # close() gathers the job tasks the cancel just interrupted: their CancelledError is the teardown's own
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await worker.close()


async def test_worker_started_while_redis_is_away_waits_for_it(settings: Settings, tmp_path: Path) -> None:
    server = PrivateRedis(tmp_path)  # not started yet
    queue_name = f"q:{uuid.uuid4().hex}"
    worker = build_worker(
        settings.model_copy(update={"redis_url": server.url}),
        functions=[func(record, max_tries=3)],
        cron_jobs=[],
        queue_name=queue_name,
        on_startup=None,
        on_shutdown=None,
        poll_delay=0.01,
        handle_signals=False,
    )
    worker.redis_settings.conn_retries = 0  # fail fast inside arq: the reconnect loop is ours
    task = asyncio.create_task(worker.async_run())
    marker = uuid.uuid4().hex
    try:
        await eventually(lambda: worker.redis_outages > 0 or task.done())
        assert not task.done()
        server.start()
        await _enqueue(server.url, queue_name, marker)
        await eventually(lambda: marker in RUNS)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # close() gathers the job tasks the cancel just interrupted: their CancelledError is the teardown's own
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await worker.close()
        server.stop()


async def test_the_hot_paths_kept_connections_ride_out_a_redis_restart(private_redis: PrivateRedis) -> None:
    """A kept connection died with the server: the first call after the restart is made again on a fresh one
    (the rate limit would otherwise fail open, and the wake leave its delivery to the sweep)."""
    from shared import redis_calls
    from shared.queue import open_queue
    from shared.redis_calls import Script, kept, run_script

    echo = Script("return ARGV[1]")
    queue = open_queue(private_redis.url)
    try:
        await asyncio.gather(*(run_script(queue, echo, [], [str(n)]) for n in range(3)))  # three kept connections
        private_redis.kill()
        private_redis.start()  # same port, a restarted server: it knows no script and none of those connections
        assert await run_script(queue, echo, [], ["after"]) == b"after"
        assert len(kept(queue)._idle) == 1  # the dead ones dropped, the fresh one kept
    finally:
        await redis_calls.close(queue)
        await queue.aclose()
