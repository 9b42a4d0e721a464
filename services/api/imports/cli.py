"""`guestcard import FILE --org ORG_ID`: the same batch as POST /v1/imports, run in this process with a
progress bar (rich), then a summary of what was created, attached, sent to review, rejected or unchanged."""

from __future__ import annotations

import uuid
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from services.api.imports.batches import create_batch, run_batch
from services.api.imports.engine import OUTCOMES, Run


async def import_file(
    database_url: str,
    redis_url: str | None,
    queue_name: str,
    raw: bytes,
    filename: str,
    org_id: uuid.UUID,
    *,
    preset: str,
    mapping: dict[str, str],
    dry_run: bool,
    property_id: uuid.UUID | None,
    console: Console,
) -> dict[str, Any]:
    from shared.db import make_engine, make_sessionmaker
    from shared.queue import JobRequest, create_queue, send_jobs

    engine = make_engine(database_url, pool_size=2)
    sessionmaker = make_sessionmaker(engine)
    queue = await create_queue(redis_url) if redis_url else None
    try:
        async with sessionmaker() as session, session.begin():
            batch = await create_batch(
                session,
                org_id,
                None,
                raw,
                preset=preset,
                mapping=mapping,
                dry_run=dry_run,
                default_property_id=property_id,
                filename=filename,
                enqueue=False,
            )
            batch_id = batch.id

        async def forward(jobs: list[JobRequest]) -> None:
            await send_jobs(queue, jobs, queue_name)

        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("dry run" if dry_run else "importing", total=batch.total_rows, counts="")

            async def progress(run: Run, total: int) -> None:
                counts = " ".join(f"{name} {run.counts[name]}" for name in OUTCOMES if run.counts[name])
                bar.update(task, completed=run.processed, counts=counts)

            done = await run_batch(sessionmaker, batch_id, send_jobs=forward, progress=progress)
        assert done is not None
        table = Table(title=f"import {done.id}{' (dry run)' if dry_run else ''}")
        for name in OUTCOMES:
            table.add_column(name, justify="right")
        table.add_row(*(str(done.counts.get(name, 0)) for name in OUTCOMES))
        console.print(table)
        for error in done.errors[:20]:
            console.print(f"row {error['row']}: {error['field']}: {error['message']}")
        return {"id": str(done.id), "status": done.status, "dry_run": dry_run, "counts": done.counts}
    finally:
        if queue is not None:
            await queue.aclose()
        await engine.dispose()
