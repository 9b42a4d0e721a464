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
from dataclasses import dataclass
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
from services.intake.cron import refresh_planner_stats, sweep_inbound
from shared.enums import InboundStatus
from shared.logging import get_logger
from shared.queue import DRAIN_INBOUND, intake_wake_key, next_generation, wake
from shared.schemas.signal import SignalResult

log = get_logger(__name__)

MAX_TRIES = 8
# rows one job claims and hands to the API in one request (issue #16); ctx["intake_batch"] overrides. 100, not
# 50: under load each batch's fixed costs (the worker's claim, hand-off, outcome and send jobs, the applier's
# configuration statements) spread over twice the leads (docs/benchmarks.md, session 26)
INTAKE_BATCH = 100
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

    Each read moves the generation on first, so a delivery accepted from then on wakes the next drain: none
    is left behind by this one's last read. While a drain of the organization runs in this process, a newly
    started one does not run beside it (each would re-read the queue's in-progress jobs at every poll, and
    wait for the organization's turn anyway): it asks the running drain for one more read, and ends once that
    read has begun (see `_Drain`). After MAX_DRAIN_BATCHES the drain wakes the next one and ends, so one job
    never runs for long under a steady stream.
    """
    drains: dict[str, _Drain] = ctx.setdefault("drains", {})  # on_startup's, shared by every job's copy of ctx
    while (running := drains.get(org_id)) is not None:
        if await running.read_again():
            return 0
    drains[org_id] = drain = _Drain()
    try:
        claimed_total, ended = await _drain(ctx, org_id, drain)
    finally:
        del drains[org_id]
        drain.ends()
    if not ended:
        await wake(ctx["redis"], DRAIN_INBOUND, (org_id,), intake_wake_key(org_id), ctx["settings"].queue_name)
    return claimed_total


async def _drain(ctx: dict[str, Any], org_id: str, drain: _Drain) -> tuple[int, bool]:
    """The drain's batches: (rows claimed, whether a short batch ended it).

    Under a backlog (the last read came back full) the next batch is read, parsed and matched while this one
    is applied: the API applies one batch of an organization at a time, and the worker's part would otherwise
    wait for it, and it for the worker's. A short read means no backlog: the next read waits for the hand-off,
    so deliveries arriving meanwhile join it instead of waiting behind a batch read too early.

    A batch's outcomes are written (its own transaction) while the next batch is handed off: the API's part is
    the organization's bottleneck, and it no longer waits for the worker's bookkeeping between two batches.
    At most one batch's outcomes are in writing; all are written before the drain ends or raises.
    """
    size = int(ctx.get("intake_batch", INTAKE_BATCH))

    async def read() -> _Claimed:
        await next_generation(ctx["redis"], intake_wake_key(org_id))
        drain.batch_begins()
        return await _claim(ctx, lambda session: pipeline.claim_for_org(session, uuid.UUID(org_id), size))

    claimed_total = 0
    ahead: asyncio.Task[_Claimed] | None = None
    recording: list[asyncio.Task[dict[uuid.UUID, str | None]]] = []
    ended = False
    try:
        for number in range(MAX_DRAIN_BATCHES):
            reading, ahead = ahead, None
            batch = await reading if reading is not None else await read()
            claimed_total += len(batch.rows)
            full = len(batch.rows) >= size
            if full and number + 1 < MAX_DRAIN_BATCHES and not _hand_offs_saturated(ctx):
                ahead = asyncio.create_task(read())
            async with _turn(ctx, org_id):
                answer = await _ask_api_claimed(ctx, batch)
            if _all_applied(answer):
                recording.append(asyncio.create_task(_record_claimed(ctx, batch, answer)))
            else:  # the API is away or failed some: recorded now, so the retry goes up before another hand-off
                await _record_claimed(ctx, batch, answer)
            if len(recording) > 1:
                await recording.pop(0)  # the batch before: written while the API applied this one
            if not full and not drain.asked:
                ended = True
                break
        while recording:
            await recording.pop(0)
    except BaseException:
        if ahead is not None:  # give its rows back at once: the retry (or anyone) claims them again
            await _give_back(ctx, ahead)
        for writing in recording:  # what the API answered is written before the error goes up
            with contextlib.suppress(BaseException):
                await writing
        raise
    return claimed_total, ended


class _Drain:
    """The organization's running drain in this process, and the drains that asked it for one more batch.

    A drain job that starts while another runs (the generation moved on at that one's last batch, so a later
    wake queued a new job) sets `asked` and waits. The running drain's next batch moves the generation on
    before it reads, which covers every delivery whose wake joined the asking job; the asker then ends. If the
    running drain ends first (a short batch before the ask, the batch limit, an error), the asker runs itself.
    """

    def __init__(self) -> None:
        self.asked = False
        self._waiters: list[asyncio.Future[bool]] = []

    async def read_again(self) -> bool:
        """True once a batch has begun after the ask; False when the drain ended without one."""
        self.asked = True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    def batch_begins(self) -> None:
        self._resolve(True)

    def ends(self) -> None:
        self._resolve(False)

    def _resolve(self, served: bool) -> None:
        self.asked = False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(served)


@contextlib.asynccontextmanager
async def _turn(ctx: dict[str, Any], org_id: str | None) -> AsyncIterator[None]:
    """The organization's turn, then a hand-off slot of this process."""
    async with contextlib.AsyncExitStack() as gates:
        if org_id is not None and "org_gates" in ctx:
            await gates.enter_async_context(_org_gate(ctx["org_gates"], org_id))
        if ctx.get("handoff_gate") is not None:
            await gates.enter_async_context(ctx["handoff_gate"])
        yield


def _hand_offs_saturated(ctx: dict[str, Any]) -> bool:
    """Every hand-off slot of this process is taken (many organizations at once): a batch read ahead now would
    only hold its rows, leased, while it waited for a slot, so the drain reads after its hand-off instead."""
    gate = ctx.get("handoff_gate")
    return gate is not None and gate.locked()


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
    return await _hand_off_claimed(ctx, await _claim(ctx, claim))


@dataclass(slots=True)
class _Claimed:
    """A batch read, parsed and matched: its rows are leased to this process until handed off."""

    rows: set[uuid.UUID]
    statuses: dict[uuid.UUID, str | None]
    pending: list[pipeline.Prepared]


async def _claim(ctx: dict[str, Any], claim: Callable[[AsyncSession], Awaitable[list[Row[Any]]]]) -> _Claimed:
    """Claim, parse and match in one transaction; rows that end at the parse are finished in it."""
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    held: set[uuid.UUID] = ctx.setdefault("claimed_rows", set())
    cache = ctx.setdefault("org_config_cache", {})
    claimed: set[uuid.UUID] = set()
    try:
        async with sessionmaker() as session, session.begin():
            rows = await claim(session)
            claimed = {row.id for row in rows}
            held |= claimed
            prepared = await pipeline.prepare(cache, session, rows) if rows else []
    except BaseException:
        held -= claimed
        raise
    statuses: dict[uuid.UUID, str | None] = {item.inbound_id: item.status for item in prepared}
    return _Claimed(claimed, statuses, [item for item in prepared if item.envelope is not None])


async def _hand_off_claimed(ctx: dict[str, Any], batch: _Claimed) -> dict[uuid.UUID, str | None]:
    """Hand the batch's signals to the API and record the outcomes. Returns each claimed row's status."""
    return await _record_claimed(ctx, batch, await _ask_api_claimed(ctx, batch))


async def _ask_api_claimed(ctx: dict[str, Any], batch: _Claimed) -> _Answer | None:
    """The API's answer for the batch's signals (None: every row ended at the parse)."""
    if not batch.pending:
        return None
    try:
        return await _ask_api(ctx, batch.pending)
    except BaseException:
        _forget(ctx, batch)  # the rows stay `received` under their lease: a retry or the sweep takes them
        raise


async def _record_claimed(ctx: dict[str, Any], batch: _Claimed, answer: _Answer | None) -> dict[uuid.UUID, str | None]:
    """Record what the API answered. Returns each claimed row's status."""
    try:
        statuses = dict(batch.statuses)
        if answer is not None:
            statuses |= await _record(ctx, ctx["sessionmaker"], batch.pending, answer)
        return statuses
    finally:  # final, released for a retry, or rolled back: PostgreSQL has the truth again
        _forget(ctx, batch)


def _all_applied(answer: _Answer | None) -> bool:
    """The API answered every signal, none with a 5xx (those are retried)."""
    return answer is None or (isinstance(answer, list) and all(result.status < 500 for result in answer))


def _forget(ctx: dict[str, Any], batch: _Claimed) -> None:
    held: set[uuid.UUID] = ctx.setdefault("claimed_rows", set())
    held -= batch.rows


async def _give_back(ctx: dict[str, Any], ahead: asyncio.Task[_Claimed]) -> None:
    """A batch read ahead whose drain failed: its signal rows go back to `received` at once (the ones that
    ended at the parse are already finished)."""
    held: set[uuid.UUID] = ctx.setdefault("claimed_rows", set())
    with contextlib.suppress(Exception):
        batch = await ahead
        try:
            async with ctx["sessionmaker"]() as session, session.begin():
                await pipeline.release(session, [item.inbound_id for item in batch.pending])
        finally:
            held -= batch.rows


# the API's results for a batch, or the reason it could not be reached
_Answer = list[SignalResult] | client.ApiUnavailable


async def _ask_api(ctx: dict[str, Any], pending: list[pipeline.Prepared]) -> _Answer:
    envelopes = [item.envelope for item in pending if item.envelope is not None]
    try:
        return await client.post_signals(ctx["api"], envelopes)
    except client.ApiRefused as refused:
        return [
            SignalResult(inbound_id=item.inbound_id, status=refused.status, detail=refused.detail) for item in pending
        ]
    except client.ApiUnavailable as error:
        return error


async def _record(
    ctx: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
    pending: list[pipeline.Prepared],
    answer: _Answer,
) -> dict[uuid.UUID, str]:
    if isinstance(answer, client.ApiUnavailable):
        return await _retry_or_fail(ctx, sessionmaker, pending, str(answer))
    outcomes, unavailable = [], []
    for item, result in zip(pending, answer, strict=True):
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
# planner statistics of tables that outgrew them (shared/planner_stats.py)
CRON_JOBS += [refresh_planner_stats]
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
