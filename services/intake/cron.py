"""The worker's sweeps: a row still `received` long after it arrived is queued again, so a job lost in
Redis loses nothing; tables that outgrew their planner statistics are analyzed (shared/planner_stats.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import clock, planner_stats
from shared.enums import InboundStatus
from shared.logging import get_logger
from shared.models import InboundMessage

log = get_logger(__name__)

SWEEP_BATCH = 500


async def sweep_inbound(ctx: dict[str, Any]) -> int:
    """Re-queue rows still `received` after the grace period.

    The job id carries `attempts`, so a row whose earlier sweep job already ran gets a new one, while a
    sweep repeating before any progress is deduplicated by arq.
    """
    settings = ctx["settings"]
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    cutoff = clock.now() - timedelta(seconds=settings.inbound_sweep_after_seconds)
    async with sessionmaker() as session, session.begin():
        found = (
            select(InboundMessage.id)
            .where(
                InboundMessage.status == InboundStatus.received.value,
                InboundMessage.received_at <= cutoff,
                # untouched for as long: a job still retrying (backoff < the grace period) is left alone
                InboundMessage.updated_at <= cutoff,
            )
            .order_by(InboundMessage.received_at)
            .limit(SWEEP_BATCH)
            .with_for_update(key_share=True, skip_locked=True)
            .scalar_subquery()
        )
        # a lease left by a worker that died is cleared, so the job queued now can claim the row
        rows = (
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id.in_(found))
                .values(claimed_until=None, updated_at=InboundMessage.updated_at)
                .returning(InboundMessage.id, InboundMessage.attempts)
                .execution_options(synchronize_session=False)
            )
        ).all()
    queued = 0
    for inbound_id, attempts in rows:
        job = await ctx["redis"].enqueue_job(
            "process_inbound", str(inbound_id), _job_id=f"inbound:{inbound_id}:sweep:{attempts}"
        )
        queued += job is not None
    if rows:
        log.info("intake.sweep", found=len(rows), queued=queued)
    return queued


async def refresh_planner_stats(ctx: dict[str, Any]) -> int:
    """ANALYZE the tables that at least doubled since their last ANALYZE (a burst into a young database)."""
    return len(await planner_stats.refresh(ctx["engine"]))
