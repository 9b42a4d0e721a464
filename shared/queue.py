"""arq plumbing shared by the API (enqueue) and the worker (settings).

Jobs are queued inside the transaction and sent after commit (DESIGN.md §5.3): a job never sees a row that
is not committed, and a job lost between commit and send is recovered by the worker's sweep.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from sqlalchemy.ext.asyncio import AsyncSession

from shared.logging import get_logger

log = get_logger(__name__)

PENDING_JOBS_KEY = "guestcard.pending_jobs"
REDIS_SOCKET_TIMEOUT = 5.0  # a Redis that hangs (not refuses) must not hang a request


@dataclass(frozen=True, slots=True)
class JobRequest:
    function: str
    args: tuple[Any, ...]
    job_id: str


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


def enqueue_after_commit(session: AsyncSession, function: str, *args: Any, job_id: str) -> None:
    """Remember a job on the session; the unit-of-work owner sends it once the commit succeeded."""
    session.info.setdefault(PENDING_JOBS_KEY, []).append(JobRequest(function, args, job_id))


def take_pending_jobs(session: AsyncSession) -> list[JobRequest]:
    return list(session.info.pop(PENDING_JOBS_KEY, []))


async def send_jobs(queue: ArqRedis | None, jobs: list[JobRequest], queue_name: str) -> None:
    """Best effort: a failure here is logged, never raised; the sweep re-enqueues what was missed."""
    if queue is None:
        return
    for job in jobs:
        try:
            await queue.enqueue_job(job.function, *job.args, _job_id=job.job_id, _queue_name=queue_name)
        except Exception as error:
            log.warning("queue.enqueue_failed", function=job.function, job_id=job.job_id, error=type(error).__name__)


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
