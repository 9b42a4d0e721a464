"""arq WorkerSettings: JSON jobs, job-id dedup, retries with backoff, a sweep for anything lost.

Tuned for speed to lead: arq's default 0.5 s poll delay alone would add ~270 ms median latency.
"""

from __future__ import annotations

import json
from typing import Any

from arq import func
from arq.connections import RedisSettings
from arq.cron import cron
from arq.worker import Worker

from services.intake.context import on_shutdown, on_startup
from shared.config import Settings, get_settings
from shared.queue import redis_settings, serialize_job

MAX_TRIES = 8


def job_functions() -> list[Any]:
    """Every job the intake worker runs (imported lazily so the API never imports parsers)."""
    from services.intake import tasks

    return [func(function, max_tries=MAX_TRIES) for function in tasks.JOBS]


def cron_jobs() -> list[Any]:
    from services.intake import tasks

    return [cron(function, second={0, 15, 30, 45}, run_at_startup=True) for function in tasks.CRON_JOBS]


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
        "handle_signals": True,
    }


def build_worker(settings: Settings | None = None, **overrides: Any) -> Worker:
    settings = settings or get_settings()
    options = worker_options(settings)
    options.update(overrides)
    ctx = options.pop("ctx", {})
    ctx.setdefault("settings", settings)
    return Worker(ctx=ctx, **options)


class WorkerSettings:
    """For `arq services.intake.worker.WorkerSettings`; `guestcard worker` uses build_worker()."""

    functions = job_functions()
    cron_jobs = cron_jobs()
    on_startup = on_startup
    on_shutdown = on_shutdown
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url or "redis://127.0.0.1:6379")
    job_serializer = serialize_job
    job_deserializer = json.loads
