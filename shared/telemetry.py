"""Counters shared across processes, kept in Redis, exported by the API's `/metrics`.

The API process keeps its own request histogram in memory (prometheus-client). Other processes (the arq
worker, any API worker) add to counters here with one HINCRBY; the scrape reads them back as Prometheus
counters. Redis persists them across worker restarts, so they never reset behind a `rate()`. Label values
are bounded by construction (job function names, statuses, channels): never an organization id.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry

from shared.logging import get_logger

log = get_logger("telemetry")


# hashes named after the deployment's queue (GUESTCARD_QUEUE), so deployments sharing a Redis stay apart
def jobs_key(queue_name: str) -> str:
    return f"{queue_name}:telemetry:jobs"  # field "function|outcome"


def outbound_key(queue_name: str) -> str:
    return f"{queue_name}:telemetry:outbound"  # field "channel|status"


async def count(redis: Any, key: str, *labels: str) -> None:
    """Add one to a counter; telemetry never breaks the work it observes."""
    if redis is None:
        return
    try:
        await redis.hincrby(key, "|".join(labels), 1)
    except Exception as error:
        log.warning("telemetry.count_failed", key=key, error=type(error).__name__)


async def count_outbound(redis: Any, queue_name: str, channel: str, status: str) -> None:
    """For messaging: one outbound message reached `status` (queued, sent, delivered, failed, suppressed)."""
    await count(redis, outbound_key(queue_name), channel, status)


def instrumented(function: Callable[..., Awaitable[Any]]) -> Any:
    """Wrap an arq job: count success, retry, failure and cancellation per function in Redis."""

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        outcome = "failure"
        try:
            result = await function(ctx, *args, **kwargs)
            outcome = "success"
            return result
        except Retry:
            outcome = "retry"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            settings = ctx.get("settings")
            queue_name = settings.queue_name if settings is not None else "guestcard:queue"
            await count(ctx.get("redis"), jobs_key(queue_name), function.__name__, outcome)

    run.__wrapped__ = getattr(function, "__wrapped__", function)  # type: ignore[attr-defined]  # the job itself
    return run


async def read(redis: Any, key: str) -> dict[tuple[str, ...], int]:
    raw = await redis.hgetall(key)
    out = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        out[tuple(name.split("|"))] = int(value)
    return out
