"""arq plumbing shared by the API (enqueue) and the worker (settings).

Jobs are queued inside the transaction and sent after commit (DESIGN.md §5.3): a job never sees a row that
is not committed, and a job lost between commit and send is recovered by the worker's sweep.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job as serialize_arq_job
from arq.utils import timestamp_ms
from redis.exceptions import NoScriptError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.logging import get_logger
from shared.redis_calls import Script, run_script

log = get_logger(__name__)

PENDING_JOBS_KEY = "guestcard.pending_jobs"
REDIS_SOCKET_TIMEOUT = 5.0  # a Redis that hangs (not refuses) must not hang a request


# most items one batched job carries (`enqueue_after_commit(..., batch=...)`): a transaction that queued more
# (an intake batch of 100 signals queues ~200 messages) makes several jobs, which the worker runs side by side.
# 50, not 16: each job pays arq's overhead, a claim and a settle transaction (docs/benchmarks.md, session 26)
BATCH_MAX = 50


@dataclass(frozen=True, slots=True)
class JobRequest:
    function: str
    args: tuple[Any, ...]
    job_id: str
    # the job waits this long before it runs (a retry's backoff)
    defer_s: float = 0.0
    # may go out as one job of this function with the others of the unit of work that name it (see take_pending_jobs)
    batch: str | None = None


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


async def create_queue(url: str) -> ArqRedis:
    return await create_pool(redis_settings(url), job_serializer=serialize_job, job_deserializer=json.loads)


def open_queue(url: str, queue_name: str | None = None) -> ArqRedis:
    """The API's queue client: connects lazily (no ping), so the API starts and serves while Redis is away.

    redis-py replaces a connection that died in a Redis restart on the next command; what fails meanwhile
    is an enqueue after commit, which `send_jobs` tolerates (the worker's sweep re-enqueues the row).
    """
    settings = redis_settings(url)
    queue = ArqRedis(
        host=settings.host,
        port=settings.port,
        unix_socket_path=settings.unix_socket_path,
        db=settings.database,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        socket_connect_timeout=settings.conn_timeout,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        encoding="utf8",
    )
    queue.job_serializer = serialize_job
    queue.job_deserializer = json.loads
    if queue_name:
        queue.default_queue_name = queue_name
    return queue


def serialize_job(value: Any) -> bytes:
    """JSON, not pickle: a job payload from Redis is never executable."""
    return json.dumps(value, default=str).encode()


def enqueue_after_commit(
    session: AsyncSession, function: str, *args: Any, job_id: str, batch: str | None = None, defer_s: float = 0.0
) -> None:
    """Remember a job on the session; the unit-of-work owner sends it once the commit succeeded.

    `defer_s`: the job runs that much later; with a fixed `job_id`, every commit meanwhile joins it.

    `batch`: the job may instead run as part of one `batch(ctx, [first args…])` job that carries every such
    request of this unit of work (up to BATCH_MAX each): the outbox's sends of one transaction go as one job.
    Requests stay one per item until the commit, so dropping those of a rolled-back savepoint still works.
    """
    session.info.setdefault(PENDING_JOBS_KEY, []).append(
        JobRequest(function, args, job_id, defer_s=defer_s, batch=batch)
    )


def take_pending_jobs(session: AsyncSession) -> list[JobRequest]:
    """The jobs to send after commit, batchable requests merged: a batch job's id is its function and its
    first item (a fresh row id, so the id is new and arq's dedup never refuses it); a request alone in its
    batch goes as itself."""
    pending = list(session.info.pop(PENDING_JOBS_KEY, []))
    if not any(job.batch for job in pending):
        return pending
    jobs: list[JobRequest] = []
    batches: dict[str, list[JobRequest]] = {}
    for job in pending:
        if job.batch is None:
            jobs.append(job)
        else:
            batches.setdefault(job.batch, []).append(job)
    for function, requests in batches.items():
        for start in range(0, len(requests), BATCH_MAX):
            chunk = requests[start : start + BATCH_MAX]
            if len(chunk) == 1:
                jobs.append(dataclasses.replace(chunk[0], batch=None))
                continue
            items = [request.args[0] for request in chunk]
            jobs.append(JobRequest(function, (items,), job_id=f"{function}:{items[0]}"))
    return jobs


# arq's enqueue (WATCH, EXISTS, MULTI/PSETEX/ZADD/EXEC: three round trips per job) as one script: the same
# keys, the same dedup rule (no job while its job key or result key exists), the same payload and expiry
# A queued job also rings the queue's doorbell (a one-item list a worker waits on with BLPOP), so an idle
# worker starts it at once instead of at its next timed poll (ResilientWorker.wait_for_work).
ENQUEUE_SCRIPT = Script("""
if redis.call('exists', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
redis.call('lpush', KEYS[4], '1')
redis.call('ltrim', KEYS[4], 0, 0)
return 1
""")
DOORBELL_PREFIX = "guestcard:doorbell:"


def doorbell_key(queue_name: str) -> str:
    return DOORBELL_PREFIX + queue_name


EXPIRES_MS = 86_400_000  # arq's default: a job not started within a day is dropped


async def send_jobs(queue: ArqRedis | None, jobs: list[JobRequest], queue_name: str) -> None:
    """Best effort: a failure here is logged, never raised; the sweep re-enqueues what was missed.

    Every job of the unit of work goes in one pipelined round trip (one script call each).
    """
    if queue is None or not jobs:
        return
    try:
        await _with_script(queue, ENQUEUE_SCRIPT, lambda: _enqueue(queue, jobs, queue_name))
    except Exception as error:
        for job in jobs:
            log.warning("queue.enqueue_failed", function=job.function, job_id=job.job_id, error=type(error).__name__)


async def _with_script(queue: ArqRedis, script: Script, call: Callable[[], Awaitable[Any]]) -> Any:
    """`call()`, which runs `script` by its SHA; a Redis that restarted (or never saw the script) gets it loaded
    once and the call made again."""
    try:
        return await call()
    except NoScriptError:
        await queue.script_load(script.source)
        return await call()


def queued_job_id(queue_name: str, job_id: str) -> str:
    """The id a job has in Redis: arq's job keys (`arq:job:<id>`) are not per queue, so a fixed id such as
    `events.publish` queued on another queue (another deployment, or an earlier run that stopped with it
    queued) would otherwise be taken as this queue's copy, and every later enqueue dropped as a duplicate."""
    return f"{queue_name}:{job_id}"


async def _enqueue(queue: ArqRedis, jobs: list[JobRequest], queue_name: str) -> None:
    enqueued_ms = timestamp_ms()
    async with queue.pipeline(transaction=False) as pipe:
        for job in jobs:
            payload = serialize_arq_job(job.function, job.args, {}, None, enqueued_ms, serializer=serialize_job)
            job_id = queued_job_id(queue_name, job.job_id)
            keys = [job_key_prefix + job_id, result_key_prefix + job_id, queue_name, doorbell_key(queue_name)]
            defer_ms = round(job.defer_s * 1000)
            args = [str(EXPIRES_MS + defer_ms), payload, str(enqueued_ms + defer_ms), job_id]
            pipe.evalsha(ENQUEUE_SCRIPT.sha, len(keys), *keys, *args)  # type: ignore[arg-type]  # bytes are fine
        await pipe.execute()


# One job that drains, instead of one job per item (issue #16: a burst of 5,000 deliveries was 5,000 jobs).
# The job id carries a generation: `{queue}:{key}:{n}`, n read from `guestcard:wake:{key}` in the same
# script. While generation n's job is queued, every wake joins it (the same id: arq's dedup). The job, once
# started, moves the generation on (`next_generation`) before its first read, so a wake after that queues
# job n+1: an item committed before a wake is seen either by the job it joined (which reads after the wake)
# or by the next one. No wake is lost between the job's last read and its end.
WAKE_SCRIPT = Script("""
local generation = redis.call('get', KEYS[1]) or '0'
local job_id = ARGV[1] .. ':' .. generation
local job_key = ARGV[2] .. job_id
if redis.call('exists', job_key, ARGV[3] .. job_id) > 0 then return 0 end
redis.call('psetex', job_key, ARGV[4], ARGV[5])
redis.call('zadd', KEYS[2], ARGV[6], job_id)
redis.call('lpush', KEYS[3], '1')
redis.call('ltrim', KEYS[3], 0, 0)
return 1
""")
WAKE_PREFIX = "guestcard:wake:"


async def wake(queue: ArqRedis | None, function: str, args: tuple[Any, ...], key: str, queue_name: str) -> bool:
    """Queue `function(*args)` unless its current generation is already queued. Best effort, like send_jobs:
    a failure is logged and the caller's sweep recovers (returns False)."""
    if queue is None:
        return False
    now_ms = timestamp_ms()
    payload = serialize_arq_job(function, args, {}, None, now_ms, serializer=serialize_job)
    argv = [queued_job_id(queue_name, key), job_key_prefix, result_key_prefix, str(EXPIRES_MS), payload, str(now_ms)]
    keys = (WAKE_PREFIX + key, queue_name, doorbell_key(queue_name))
    try:  # on a kept connection (shared/redis_calls.py): an accepted webhook's one Redis call after its limit
        return bool(await run_script(queue, WAKE_SCRIPT, keys, argv))
    except Exception as error:
        log.warning("queue.wake_failed", function=function, error=type(error).__name__)
        return False


DRAIN_INBOUND = "drain_inbound"  # the worker's intake drain (services/intake/jobs.py), woken per organization


def intake_wake_key(org_id: object) -> str:
    return f"intake:{org_id}"


async def next_generation(redis: ArqRedis, key: str) -> None:
    """Called by a woken job before it reads anything: wakes from now on queue the next job."""
    await redis.incr(WAKE_PREFIX + key)


@asynccontextmanager
async def job_transaction(ctx: dict[str, Any]) -> AsyncIterator[AsyncSession]:
    """A job owns its transaction the way a request does: commit, then send the jobs it queued.

    For the acting half's jobs (outbox sends, scheduled actions, SLA and offer timeouts), which run in the
    worker process against `ctx["sessionmaker"]`; arq may run a job twice, so the work must be idempotent.
    """
    async with ctx["sessionmaker"]() as session:
        async with session.begin():
            yield session
        await send_jobs(ctx.get("redis"), take_pending_jobs(session), ctx["settings"].queue_name)
