"""The import job (registered in services/intake/jobs.py)."""

from __future__ import annotations

import uuid
from typing import Any

from services.api.imports.batches import run_batch
from shared.queue import JobRequest, send_jobs


async def run_import(ctx: dict[str, Any], batch_id: str) -> str:
    async def forward(jobs: list[JobRequest]) -> None:
        await send_jobs(ctx.get("redis"), jobs, ctx["settings"].queue_name)

    batch = await run_batch(ctx["sessionmaker"], uuid.UUID(batch_id), send_jobs=forward)
    return batch.status if batch is not None else "missing"
