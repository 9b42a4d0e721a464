"""Job entry points. Each takes ids, owns its transaction, and is idempotent: arq may run a job twice.

Imports point one way: worker → jobs → pipeline / client / cron. The intake job owns its sessions, the
retry budget and what an unavailable API means; the pipeline returns values.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from arq import Retry
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.automation.jobs import drain_scheduled_actions
from services.api.imports.jobs import run_import
from services.api.messaging.jobs import send_due_messages, send_message, send_messages
from services.api.owners.jobs import escalate_sla, expire_offers
from services.api.webhooks.jobs import deliver_webhooks, publish_events
from services.intake import client, pipeline
from services.intake.cron import sweep_inbound
from shared.enums import InboundStatus
from shared.logging import get_logger
from shared.queue import DRAIN_INBOUND, intake_wake_key, next_generation, wake
from shared.schemas.signal import SignalResult

log = get_logger(__name__)

MAX_TRIES = 8
# rows one job claims and hands to the API in one request (issue #16); ctx["intake_batch"] overrides
INTAKE_BATCH = 50
# batches in flight per worker process: more only queue up inside the API's CPU and time out there; a job
# waits for its turn before it claims, so the rows stay claimable by whoever runs first
HANDOFFS_IN_FLIGHT = 4
ORG_HANDOFFS_IN_FLIGHT = 1  # of them, one organization's (see _org_gate)
MAX_DRAIN_BATCHES = 20  # one drain job's batches before it hands over to the next (drain_inbound)


def backoff_seconds(job_try: int) -> float:
    """1, 2, 4 … capped at 5 min: a flaky API or database gets time to recover."""
    return float(min(300, 2 ** max(0, job_try - 1)))


async def heartbeat(ctx: dict[str, Any]) -> str:
    """A no-op job for readiness probes and tests of the queue path."""
    return "ok"


def retry_later(ctx: dict[str, Any]) -> Retry:
    return Retry(defer=backoff_seconds(int(ctx.get("job_try", 1))))


async def process_inbound(ctx: dict[str, Any], inbound_id: str, org_id: str | None = None) -> str:
    """Claim, parse and match in one short transaction; hand off outside any transaction; record outcomes.

    Returns the status of `inbound_id`'s row (or "skipped" when it was no longer `received`). `org_id` (the
    accept path sends it; the sweep and replays do not) lets jobs of one organization wait their turn.
    """
    if _held_here(ctx, inbound_id):  # no wait at the gates either
        return "skipped"
    async with _turn(ctx, org_id):
        return await _process(ctx, inbound_id)


async def drain_inbound(ctx: dict[str, Any], org_id: str) -> int:
    """The accept path's wake-up (shared.queue.wake): the organization's `received` rows, batch after batch,
    until a batch comes back short. Returns how many rows it claimed.

    The generation moves on first, so a delivery accepted from now on wakes the next drain: none is left
    behind by this one's last read. After MAX_DRAIN_BATCHES it wakes the next drain itself and ends, so one
    job never runs for long under a steady stream.
    """
    await next_generation(ctx["redis"], intake_wake_key(org_id))
    batch = int(ctx.get("intake_batch", INTAKE_BATCH))
    claimed_total = 0
    for _ in range(MAX_DRAIN_BATCHES):
        async with _turn(ctx, org_id):
            claimed = await _run_batch(ctx, lambda session: pipeline.claim_for_org(session, uuid.UUID(org_id), batch))
        claimed_total += len(claimed)
        if len(claimed) < batch:
            return claimed_total
    await wake(ctx["redis"], DRAIN_INBOUND, (org_id,), intake_wake_key(org_id), ctx["settings"].queue_name)
    return claimed_total


@contextlib.asynccontextmanager
async def _turn(ctx: dict[str, Any], org_id: str | None) -> AsyncIterator[None]:
    """The organization's turn, then a hand-off slot of this process."""
    async with contextlib.AsyncExitStack() as gates:
        if org_id is not None and "org_gates" in ctx:
            await gates.enter_async_context(_org_gate(ctx["org_gates"], org_id))
        if ctx.get("handoff_gate") is not None:
            await gates.enter_async_context(ctx["handoff_gate"])
        yield


def _org_gate(gates: weakref.WeakValueDictionary[str, asyncio.Semaphore], org_id: str) -> asyncio.Semaphore:
    """The organization's turn. The API applies one batch of an organization at a time (its batch lock), so a
    second batch in flight only holds claimed rows while it queues there, and rows arriving meanwhile wait
    behind both; with one, they join the next batch. Measured at 50 leads/s, 3 rounds each: p99 speed to
    lead 145-435 ms with one, 211-585 ms with two; throughput no lower. Kept only while a job holds or
    awaits it."""
    gate = gates.get(org_id)
    if gate is None:
        gate = gates[org_id] = asyncio.Semaphore(ORG_HANDOFFS_IN_FLIGHT)
    return gate


async def _process(ctx: dict[str, Any], inbound_id: str) -> str:
    if _held_here(ctx, inbound_id):  # again: a batch may have claimed it while this job waited its turn
        return "skipped"
    row_id = uuid.UUID(inbound_id)
    claimed = await _run_batch(
        ctx, lambda session: pipeline.claim(session, row_id, int(ctx.get("intake_batch", INTAKE_BATCH)))
    )
    if not claimed:
        log.info("intake.inbound_skipped", inbound_id=inbound_id, outcome="not_received")
        return "skipped"
    return claimed.get(row_id) or InboundStatus.processed.value


def _held_here(ctx: dict[str, Any], inbound_id: str) -> bool:
    """A batch of this process holds the row's lease: its own job (most of a burst's per-row jobs, since one
    batch claims up to 50 rows) skips without asking PostgreSQL what the lease already says."""
    if uuid.UUID(inbound_id) not in ctx.get("claimed_rows", ()):
        return False
    log.debug("intake.inbound_skipped", inbound_id=inbound_id, outcome="claimed_by_this_worker")
    return True


async def _run_batch(
    ctx: dict[str, Any], claim: Callable[[AsyncSession], Awaitable[list[Row[Any]]]]
) -> dict[uuid.UUID, str | None]:
    """Claim (rows this process then holds), parse and match in one transaction, hand off, record outcomes.
    Returns each claimed row's status (empty: nothing to claim)."""
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    held: set[uuid.UUID] = ctx.setdefault("claimed_rows", set())
    cache = ctx.setdefault("org_config_cache", {})
    claimed: set[uuid.UUID] = set()
    try:
        async with sessionmaker() as session, session.begin():
            rows = await claim(session)
            if not rows:
                return {}
            claimed = {row.id for row in rows}
            held |= claimed
            prepared = await pipeline.prepare(cache, session, rows)
        statuses: dict[uuid.UUID, str | None] = {item.inbound_id: item.status for item in prepared}
        pending = [item for item in prepared if item.envelope is not None]
        if pending:
            statuses |= await _hand_off(ctx, sessionmaker, pending)
    finally:  # final, released for a retry, or rolled back: PostgreSQL has the truth again
        held -= claimed
    return statuses


async def _hand_off(
    ctx: dict[str, Any], sessionmaker: async_sessionmaker[AsyncSession], pending: list[pipeline.Prepared]
) -> dict[uuid.UUID, str]:
    envelopes = [item.envelope for item in pending if item.envelope is not None]
    try:
        results = await client.post_signals(ctx["api"], envelopes)
    except client.ApiRefused as refused:
        results = [
            SignalResult(inbound_id=item.inbound_id, status=refused.status, detail=refused.detail) for item in pending
        ]
    except client.ApiUnavailable as error:
        return await _retry_or_fail(ctx, sessionmaker, pending, str(error))
    outcomes, unavailable = [], []
    for item, result in zip(pending, results, strict=True):
        if result.status >= 500:
            unavailable.append(item)
        else:
            outcomes.append(pipeline.applied_values(item, result))
    async with sessionmaker() as session, session.begin():
        await pipeline.finish(session, outcomes)
    statuses = {values["row_id"]: values["status"] for values in outcomes}
    if unavailable:
        statuses |= await _retry_or_fail(ctx, sessionmaker, unavailable, "500")
    return statuses


async def _retry_or_fail(
    ctx: dict[str, Any], sessionmaker: async_sessionmaker[AsyncSession], items: list[pipeline.Prepared], error: str
) -> dict[uuid.UUID, str]:
    """Within the budget: raise Retry (rows stay `received`). Past it: the rows fail with the reason."""
    tries = int(ctx.get("job_try", 1))
    if tries < int(ctx.get("max_tries", MAX_TRIES)):
        async with sessionmaker() as session, session.begin():
            await pipeline.release(session, [item.inbound_id for item in items])
        for item in items:
            log.warning("intake.api_unavailable", **item.bound, job_try=tries, error=error)
        raise retry_later(ctx)
    reason = f"api unavailable after {tries} tries ({error})"
    outcomes = [
        pipeline.outcome_values(item.inbound_id, InboundStatus.failed, reason=reason, **item.common) for item in items
    ]
    async with sessionmaker() as session, session.begin():
        await pipeline.finish(session, outcomes)
    for item in items:
        log.error("intake.inbound_done", **item.bound, outcome="failed", job_try=tries, error=error)
    return {item.inbound_id: InboundStatus.failed.value for item in items}


JOBS: list[Any] = [heartbeat, process_inbound, drain_inbound]
CRON_JOBS: list[Any] = [sweep_inbound]
# automation: timed steps (sequences, reminders, time-triggered rules)
CRON_JOBS += [drain_scheduled_actions]

# integrations out (services/api/webhooks): after-commit jobs, and the same as crons to catch up
JOBS += [publish_events, deliver_webhooks, run_import]
CRON_JOBS += [publish_events, deliver_webhooks]
# owners: offer timeouts and SLA escalation (rows with a due time, drained with SKIP LOCKED)
CRON_JOBS += [expire_offers, escalate_sla]
# metrics: fold rollup deltas written by triggers into metric_counts
from services.api.metrics.rollups import metrics_compact  # noqa: E402

CRON_JOBS.append(metrics_compact)

# messaging (services/api/messaging/jobs.py): outbox sends; deferred / lost / stuck messages
JOBS += [send_message, send_messages]
CRON_JOBS += [send_due_messages]

# units: the daily digest of newly available matching units, decided each quarter hour for renters whose
# local morning it is (services/api/units/digest_job.py)
from services.api.units.digest_job import unit_digests  # noqa: E402

CRON_JOBS.append(unit_digests)
