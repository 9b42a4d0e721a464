"""The after-commit enqueue pattern, job-id dedup and retries, with a real Redis and a burst arq worker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq import Retry, func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.jobs import backoff_seconds
from services.intake.worker import ResilientWorker, build_worker
from shared.config import Settings
from shared.queue import JobRequest, create_queue, enqueue_after_commit, send_jobs, take_pending_jobs

RUNS: list[str] = []
ATTEMPTS: dict[str, int] = {}
RELEASE: dict[str, asyncio.Event] = {}
DONE: dict[str, asyncio.Event] = {}


async def record(ctx: dict[str, Any], marker: str) -> str:
    RUNS.append(marker)
    return marker


async def flaky(ctx: dict[str, Any], marker: str) -> str:
    ATTEMPTS[marker] = ATTEMPTS.get(marker, 0) + 1
    if ATTEMPTS[marker] < 3:
        raise Retry(defer=0.01)
    return marker


async def hold(ctx: dict[str, Any], marker: str) -> str:
    await RELEASE[marker].wait()
    RUNS.append(marker)
    DONE.setdefault(marker, asyncio.Event()).set()
    return marker


async def _run_burst(settings: Settings, queue_name: str) -> None:
    worker = build_worker(
        settings,
        functions=[func(record, max_tries=3), func(flaky, max_tries=5)],
        cron_jobs=[],
        burst=True,
        queue_name=queue_name,
        on_startup=None,
        on_shutdown=None,
        poll_delay=0.01,
        keep_result=60,  # this test reads a job's result; production keeps none
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()


async def _unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    queue_name: str,
    marker: str,
    fail: bool,
) -> None:
    queue = await create_queue(settings.redis_url or "")
    try:
        session = sessionmaker()
        try:
            async with session.begin():
                enqueue_after_commit(session, "record", marker, job_id=f"record:{marker}")
                if fail:
                    raise RuntimeError("handler failed")
            await send_jobs(queue, take_pending_jobs(session), queue_name)
        finally:
            await session.close()
    finally:
        await queue.aclose()


async def test_jobs_are_sent_only_after_commit(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    queue_name = f"q:{uuid.uuid4().hex}"
    committed, rolled_back = uuid.uuid4().hex, uuid.uuid4().hex
    await _unit_of_work(sessionmaker, settings, queue_name, committed, fail=False)
    with pytest.raises(RuntimeError):
        await _unit_of_work(sessionmaker, settings, queue_name, rolled_back, fail=True)
    await _run_burst(settings, queue_name)
    assert committed in RUNS
    assert rolled_back not in RUNS


async def test_same_job_id_runs_once(settings: Settings) -> None:
    queue_name = f"q:{uuid.uuid4().hex}"
    marker = uuid.uuid4().hex
    queue = await create_queue(settings.redis_url or "")
    try:
        first = await queue.enqueue_job("record", marker, _job_id=f"record:{marker}", _queue_name=queue_name)
        second = await queue.enqueue_job("record", marker, _job_id=f"record:{marker}", _queue_name=queue_name)
    finally:
        await queue.aclose()
    assert first is not None
    assert second is None
    await _run_burst(settings, queue_name)
    assert RUNS.count(marker) == 1


async def test_retry_runs_again_until_it_succeeds(settings: Settings) -> None:
    queue_name = f"q:{uuid.uuid4().hex}"
    marker = uuid.uuid4().hex
    queue = await create_queue(settings.redis_url or "")
    try:
        job = await queue.enqueue_job("flaky", marker, _job_id=f"flaky:{marker}", _queue_name=queue_name)
        assert job is not None
        await _run_burst(settings, queue_name)
        assert await job.result(timeout=5) == marker
    finally:
        await queue.aclose()
    assert ATTEMPTS[marker] == 3


def _holding_worker(settings: Settings, queue_name: str, **overrides: Any) -> ResilientWorker:
    """A long-running (not burst) worker that runs only `hold`."""
    return build_worker(
        settings,
        functions=[func(hold, max_tries=1)],
        cron_jobs=[],
        queue_name=queue_name,
        on_startup=None,
        on_shutdown=None,
        **overrides,
    )


async def _watch_calls(raw: aioredis.Redis) -> int:
    return int((await raw.info("commandstats")).get("cmdstat_watch", {}).get("calls", 0))


async def test_a_job_running_in_this_process_is_not_checked_in_redis_again_by_every_poll(settings: Settings) -> None:
    """A running job stays in arq's queue until it finishes; arq's poll checked it again (WATCH, EXISTS, ZSCORE)
    every 20 ms for as long as it ran. The worker skips the jobs it is running itself, and still runs the job
    once and picks up the next one."""
    assert settings.redis_url
    queue_name, marker, later = f"q:{uuid.uuid4().hex}", uuid.uuid4().hex, uuid.uuid4().hex
    RELEASE[marker], RELEASE[later] = asyncio.Event(), asyncio.Event()
    queue = await create_queue(settings.redis_url)
    raw = aioredis.from_url(settings.redis_url)
    worker = _holding_worker(settings, queue_name, redis_pool=queue)
    try:
        assert await queue.enqueue_job("hold", marker, _job_id=f"hold:{marker}", _queue_name=queue_name)
        await worker._poll_iteration()
        running = worker.tasks[f"hold:{marker}"]
        assert not running.done()
        before = await _watch_calls(raw)
        for _ in range(20):
            await worker._poll_iteration()  # the queue still holds the running job
        assert await _watch_calls(raw) - before < 10  # 20 (one per poll) before; other clients may add a few
        assert list(worker.tasks) == [f"hold:{marker}"]

        assert await queue.enqueue_job("hold", later, _job_id=f"hold:{later}", _queue_name=queue_name)
        await worker._poll_iteration()  # a job this process is not running is started as before
        assert set(worker.tasks) == {f"hold:{marker}", f"hold:{later}"}
        RELEASE[marker].set()
        RELEASE[later].set()
        await asyncio.gather(*worker.tasks.values())
        await worker._poll_iteration()
        assert RUNS.count(marker) == RUNS.count(later) == 1
        assert await raw.zcard(queue_name) == 0
    finally:
        for event in RELEASE.values():
            event.set()
        await worker.close()
        await raw.aclose()


async def test_a_job_queued_while_the_worker_waits_starts_at_once_not_at_the_next_timed_read(
    settings: Settings,
) -> None:
    """Every job shared.queue queues rings the queue's doorbell; the worker waits on it between its timed reads
    (here 60 s apart), so the job starts at once. Without it, the job would wait for the next read."""
    assert settings.redis_url
    queue_name, first, second = f"q:{uuid.uuid4().hex}", uuid.uuid4().hex, uuid.uuid4().hex
    RELEASE[first], RELEASE[second] = asyncio.Event(), asyncio.Event()
    RELEASE[first].set()
    RELEASE[second].set()
    queue = await create_queue(settings.redis_url)
    worker = _holding_worker(settings, queue_name, poll_delay=60, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        # queued by arq itself (no doorbell): the worker's first read takes it, then it waits up to 60 s
        assert await queue.enqueue_job("hold", first, _job_id=f"hold:{first}", _queue_name=queue_name)
        await asyncio.wait_for(DONE.setdefault(first, asyncio.Event()).wait(), 10)
        await send_jobs(queue, [JobRequest("hold", (second,), job_id=f"hold:{second}")], queue_name)
        # far within the 60 s to the next timed read
        await asyncio.wait_for(DONE.setdefault(second, asyncio.Event()).wait(), 10)
        await asyncio.gather(*worker.tasks.values())  # arq's bookkeeping of the job (close() cancels what runs)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()
        await queue.aclose()


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff_seconds(30) == 300
