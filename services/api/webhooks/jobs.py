"""Worker jobs of the event stream and webhooks (registered in services/intake/jobs.py).

`publish_events` numbers committed stream rows and fans them out to endpoints; `deliver_webhooks` sends what
is due. Both run as a deduplicated job right after the commit that needs them and as a cron that catches up
after downtime; both are idempotent and safe with several workers.
"""

from __future__ import annotations

from typing import Any

from services.api.webhooks.delivery import claim, record, send_all
from services.api.webhooks.publisher import BATCH, publish_batch
from shared import clock
from shared.queue import job_transaction

MAX_ROUNDS = 20


async def publish_events(ctx: dict[str, Any]) -> int:
    published = 0
    for _ in range(MAX_ROUNDS):
        async with job_transaction(ctx) as session:
            count = await publish_batch(session)
        if not count:
            break
        published += count
        if count < BATCH:
            break
    return published


async def deliver_webhooks(ctx: dict[str, Any]) -> int:
    sent = 0
    for _ in range(MAX_ROUNDS):
        now = clock.now()
        async with job_transaction(ctx) as session:
            attempts = await claim(session, now)
        if not attempts:
            break
        await send_all(ctx["settings"], attempts, now)  # no transaction open while we wait on receivers
        async with job_transaction(ctx) as session:
            await record(session, ctx["settings"], attempts, clock.now())
        sent += len(attempts)
    return sent
