"""The arq worker: JSON jobs, job-id dedup, retries with backoff, a sweep for anything lost, and outages
ridden out.

Tuned for speed to lead: arq's default 0.5 s poll delay alone would add ~270 ms median latency. Every job
`shared.queue` queues rings the queue's doorbell, so the worker starts it at once and reads the queue on a timer
only for what nobody rang for (deferred and retried jobs, the cron).

Faults (docs/operations.md): a Redis outage no longer ends the process (arq's own loop lets a redis
`ConnectionError` escape): `ResilientWorker` reconnects with jittered backoff and carries on. A job that
meets a PostgreSQL or Redis outage is retried (arq `Retry`) instead of failing; the row it was working on
stays `received`, so even a job that exhausts its tries is picked up again by the sweep.

`guestcard worker` is the one entry point (there is no `arq services.intake.worker.WorkerSettings`: a
second way to start the worker would be a second set of settings to keep equal, and arq's CLI would build a
plain `Worker` without the reconnect loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

from arq import Retry, func
from arq.connections import create_pool
from arq.cron import CronJob, cron
from arq.worker import Function, Worker

from services.intake import jobs as intake_jobs
from services.intake.context import on_shutdown, on_startup
from services.intake.jobs import MAX_TRIES
from shared.config import Settings, get_settings
from shared.logging import get_logger
from shared.outage import is_contention, is_outage, is_redis_outage, jittered_backoff
from shared.queue import doorbell_key, redis_settings, serialize_job
from shared.telemetry import instrumented  # job outcomes counted in Redis for /metrics

__all__ = ["MAX_TRIES", "ResilientWorker", "build_worker", "retry_on_outage"]

log = get_logger(__name__)

# arq writes `<queue>:health-check` (with a TTL of interval + 1 s) from its loop; /readyz reads it
HEALTH_CHECK_INTERVAL = 5
REDIS_BACKOFF_CAP = 10.0
DOORBELL_BLOCK_S = 5  # seconds one BLPOP waits, then the next one starts


def retry_on_outage(function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A job that meets a database or Redis outage is retried later, with jittered backoff; one that PostgreSQL
    rolled back to break a deadlock or a serialization conflict, at once (every job is idempotent). Before, a
    deadlocked send job failed, and its renters' replies waited for the cron's sweep."""

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await function(ctx, *args, **kwargs)
        except Retry:
            raise
        except Exception as error:
            job_try = int(ctx.get("job_try", 1))
            if is_contention(error):
                event, delay = "worker.job_contention", jittered_backoff(job_try, base=0.2, cap=5.0)
            elif is_outage(error):
                event, delay = "worker.job_outage", jittered_backoff(job_try, base=1.0, cap=60.0)
            else:
                raise
            log.warning(
                event,
                function=function.__name__,
                job_id=ctx.get("job_id"),
                job_try=job_try,
                error=type(error).__name__,
                retry_in=round(delay, 2),
            )
            raise Retry(defer=delay) from error

    return run


def job_functions() -> list[Any]:
    """Every job the intake worker runs.

    Each entry of `jobs.JOBS` (a coroutine function, or an arq `func(...)` with its own settings) is wrapped
    with `retry_on_outage`, whichever jobs other parts add.
    """
    jobs: list[Any] = []
    for job in intake_jobs.JOBS:
        if isinstance(job, Function):
            wrapped: Any = instrumented(retry_on_outage(job.coroutine))
            jobs.append(
                func(
                    wrapped,
                    name=job.name,
                    max_tries=job.max_tries or MAX_TRIES,
                    timeout=job.timeout_s,
                    keep_result=job.keep_result_s,
                    keep_result_forever=job.keep_result_forever,
                )
            )
        else:
            wrapped = instrumented(retry_on_outage(job))
            jobs.append(func(wrapped, name=job.__name__, max_tries=MAX_TRIES))
    return jobs


CRON_EVERY_S = 15  # each periodic job runs this often (see cron_seconds)
# the rollup fold runs three times as often: a third of the deltas per run, so its burst of PostgreSQL work
# (0.4 s on average at 50 leads/s when every 15 s, up to 1.5 s) stalls the intake path for a third as long
# and the planner statistics check (one catalog read) every 2 s: a burst doubles a young table in seconds
CRON_EVERY_S_BY_JOB = {"metrics_compact": 5, "refresh_planner_stats": 2}


def cron_seconds(index: int, every: int) -> set[int]:
    """Second marks of the index-th periodic job: every `every` seconds, offset by one second per job, so the
    jobs do not all start at once (their queries stall the intake drain that shares the worker's loop and the
    database)."""
    offset = index % every
    return {second for second in range(60) if second % every == offset}


def cron_jobs() -> list[Any]:
    return [
        dataclasses.replace(job, coroutine=instrumented(job.coroutine))
        if isinstance(job, CronJob)
        else cron(
            instrumented(job),
            second=cron_seconds(index, CRON_EVERY_S_BY_JOB.get(job.__name__, CRON_EVERY_S)),
            run_at_startup=True,
        )
        for index, job in enumerate(intake_jobs.CRON_JOBS)
    ]


def worker_options(settings: Settings) -> dict[str, Any]:
    assert settings.redis_url, "REDIS_URL must be set for the worker"
    return {
        "functions": job_functions(),
        "cron_jobs": cron_jobs(),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings(settings.redis_url),
        "queue_name": settings.queue_name,
        "job_serializer": serialize_job,
        "job_deserializer": json.loads,
        "max_jobs": settings.worker_max_jobs,
        "poll_delay": settings.worker_poll_delay,
        "keep_result": 0,  # outcomes live in PostgreSQL (inbound_messages); a Redis copy is a wasted write
        "job_timeout": 120,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "handle_signals": True,
    }


class ResilientWorker(Worker):
    """arq's Worker whose main loop survives Redis going away: reconnect with jittered backoff, go on.

    arq's own `main()` creates the pool, runs on_startup, then polls; any redis error there ends the
    process. Here the same steps run inside a loop: on_startup runs once, and a redis outage (in the poll,
    the heartbeat, the cron or a finished job's bookkeeping) is logged and waited out. Jobs that were
    running keep running; their arq bookkeeping may be lost, which the idempotent jobs and the sweep absorb.
    """

    redis_outages = 0
    _doorbell_task: asyncio.Task[None] | None = None

    @functools.cached_property
    def _rung(self) -> asyncio.Event:
        return asyncio.Event()

    async def wait_for_work(self, longest_s: float) -> None:
        """Until a job is queued (the doorbell `shared.queue` rings with every job it queues), a job of this
        process ends while every slot was taken, or `longest_s` passes: the timed read still starts deferred and
        retried jobs, arq's cron and jobs queued by arq's own `enqueue_job`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._rung.wait(), longest_s)

    async def _listen_for_doorbell(self) -> None:
        """BLPOP on the queue's doorbell, on a connection of its own; Redis away: wait and listen again (the
        timed read goes on meanwhile). Cancelled with the worker."""
        key, failures = doorbell_key(self.queue_name), 0
        while True:
            try:
                blocking = cast(Awaitable[Any], self.pool.blpop([key], timeout=DOORBELL_BLOCK_S))
                rung = await asyncio.wait_for(blocking, DOORBELL_BLOCK_S + 2)
                failures = 0
                if rung is not None:
                    self._rung.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # an outage, or a connection that stopped answering
                failures += 1
                log.debug("worker.doorbell_unavailable", error=type(error).__name__, attempt=failures)
                await asyncio.sleep(jittered_backoff(failures, base=0.2, cap=REDIS_BACKOFF_CAP))

    def _release_sem_dec_counter_on_complete(self) -> None:
        """arq's, and a job that ends while every slot was taken lets the loop read the queue at once."""
        full = self.job_counter >= self.max_jobs
        super()._release_sem_dec_counter_on_complete()
        if full:
            self._rung.set()

    async def close(self) -> None:
        if self._doorbell_task is not None:
            self._doorbell_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._doorbell_task
            self._doorbell_task = None
        await super().close()

    async def main(self) -> None:
        started = False
        failures = 0
        while True:
            try:
                if self._pool is None:
                    self._pool = await create_pool(
                        self.redis_settings,
                        job_deserializer=self.job_deserializer,
                        job_serializer=self.job_serializer,
                        default_queue_name=self.queue_name,
                        expires_extra_ms=self.expires_extra_ms,
                    )
                if not started:
                    log.info("worker.started", functions=sorted(self.functions), queue=self.queue_name)
                    self.ctx["redis"] = self.pool
                    if self.on_startup:
                        await self.on_startup(self.ctx)
                    started = True
                    if not self.burst:
                        self._doorbell_task = asyncio.create_task(self._listen_for_doorbell())
                while True:
                    self._rung.clear()  # before the read: a job queued from here on rings for the next one
                    await self._poll_iteration()
                    if failures:
                        log.info("worker.redis_back", after_failures=failures)
                        failures = 0
                    if self.burst and await self._burst_done():
                        return None
                    await self.wait_for_work(self.poll_delay_s)
            except Exception as error:
                if not is_redis_outage(error) or self.burst:
                    raise
                failures += 1
                self.redis_outages += 1
                delay = jittered_backoff(failures, base=0.2, cap=REDIS_BACKOFF_CAP)
                log.warning(
                    "worker.redis_unavailable", error=type(error).__name__, attempt=failures, retry_in=round(delay, 2)
                )
                await asyncio.sleep(delay)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, without the jobs this process is running. A job stays in the queue until it finishes, and arq
        checks every job id its poll reads (WATCH, EXISTS, ZSCORE, UNWATCH: four round trips) before finding it
        in progress; a drain runs for seconds under a backlog and a send job for a provider's answer, so every
        read paid them again for each. Another process's running job is still checked, as arq does."""
        await super().start_jobs(
            [job_id for job_id in job_ids if (task := self.tasks.get(job_id.decode())) is None or task.done()]
        )

    async def _burst_done(self) -> bool:
        """arq's burst ending: the job budget is used up, or the queue is empty."""
        if 0 <= self.max_burst_jobs <= self._jobs_started() or await self.pool.zcard(self.queue_name) == 0:
            await asyncio.gather(*self.tasks.values())
            return True
        return False


def build_worker(settings: Settings | None = None, **overrides: Any) -> ResilientWorker:
    settings = settings or get_settings()
    options = worker_options(settings)
    options.update(overrides)
    ctx = options.pop("ctx", {})
    ctx.setdefault("settings", settings)
    return ResilientWorker(ctx=ctx, **options)
