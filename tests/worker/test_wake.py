"""One drain job per organization instead of one job per delivery (shared.queue.wake): wakes join the queued
generation, and a wake after the job started queues the next one, so no delivery waits for the sweep."""

from __future__ import annotations

import json
import uuid

import redis.asyncio as aioredis
from arq.constants import job_key_prefix

from shared.config import Settings
from shared.queue import JobRequest, create_queue, doorbell_key, next_generation, open_queue, send_jobs, wake


async def test_wakes_join_the_queued_job_and_a_started_job_lets_the_next_wake_queue_another(
    settings: Settings,
) -> None:
    assert settings.redis_url
    queue = await create_queue(settings.redis_url)
    raw = aioredis.from_url(settings.redis_url)
    key, name = f"intake:{uuid.uuid4()}", f"guestcard:test-wake:{uuid.uuid4().hex[:8]}"
    try:
        assert await wake(queue, "drain_inbound", ("org",), key, name) is True
        assert await raw.lrange(doorbell_key(name), 0, -1) == [b"1"]  # an idle worker starts it at once
        assert await wake(queue, "drain_inbound", ("org",), key, name) is False  # joined the queued job
        assert [item.decode() for item in await raw.zrange(name, 0, -1)] == [f"{name}:{key}:0"]
        payload = json.loads(await raw.get(job_key_prefix + f"{name}:{key}:0"))
        assert (payload["f"], payload["a"]) == ("drain_inbound", ["org"])

        await next_generation(queue, key)  # what the job does first when it starts
        assert await wake(queue, "drain_inbound", ("org",), key, name) is True
        assert await wake(queue, "drain_inbound", ("org",), key, name) is False
        assert sorted(item.decode() for item in await raw.zrange(name, 0, -1)) == [f"{name}:{key}:0", f"{name}:{key}:1"]
    finally:
        jobs = [job_key_prefix + f"{name}:{key}:{generation}" for generation in (0, 1)]
        await raw.delete(name, *jobs, f"guestcard:wake:{key}", doorbell_key(name))
        await raw.aclose()
        await queue.aclose()


async def test_a_wake_with_redis_away_is_false_not_an_error() -> None:
    """The delivery is stored and acknowledged anyway; the sweep queues it later."""
    away = open_queue("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        assert await wake(away, "drain_inbound", ("org",), "intake:x", "q") is False
        assert await wake(None, "drain_inbound", ("org",), "intake:x", "q") is False
    finally:
        await away.aclose()


def test_the_drain_function_name_is_the_workers() -> None:
    from services.intake.jobs import JOBS, drain_inbound
    from shared.queue import DRAIN_INBOUND

    assert drain_inbound.__name__ == DRAIN_INBOUND and drain_inbound in JOBS


async def test_a_fixed_job_id_queued_on_another_queue_does_not_swallow_this_queues_enqueue(
    settings: Settings,
) -> None:
    """arq's job keys are not per queue: `events.publish` left queued on another queue (another deployment on
    the same Redis, or a run that stopped with it queued) made every later enqueue here a "duplicate"."""
    assert settings.redis_url
    queue = await create_queue(settings.redis_url)
    other, mine = (f"guestcard:test-fixed:{uuid.uuid4().hex[:8]}" for _ in range(2))
    job = JobRequest("publish_events", (), job_id="events.publish")
    try:
        await send_jobs(queue, [job], other)  # never run: stays queued there
        await send_jobs(queue, [job], mine)
        assert [item.decode() for item in await queue.zrange(mine, 0, -1)] == [f"{mine}:events.publish"]
        await send_jobs(queue, [job], mine)  # on one queue the id still deduplicates
        assert await queue.zcard(mine) == 1
    finally:
        await queue.delete(other, mine, *(job_key_prefix + f"{name}:events.publish" for name in (other, mine)))
        await queue.aclose()


def test_periodic_jobs_start_on_different_seconds_and_the_rollup_fold_runs_more_often() -> None:
    """The periodic jobs used to start together every 15 s; their queries stalled the intake drain at once."""
    from services.intake.worker import CRON_EVERY_S, CRON_EVERY_S_BY_JOB, cron_jobs

    jobs = {job.name.removeprefix("cron:"): sorted(job.second) for job in cron_jobs()}
    assert CRON_EVERY_S_BY_JOB == {"metrics_compact": 5, "refresh_planner_stats": 2}
    starts = [seconds[0] for name, seconds in jobs.items() if name not in CRON_EVERY_S_BY_JOB]
    assert len(set(starts)) == len(starts)  # no two of the 15 s jobs start on the same second
    for name, seconds in jobs.items():
        every = CRON_EVERY_S_BY_JOB.get(name, CRON_EVERY_S)
        assert seconds == list(range(seconds[0], 60, every)), name
