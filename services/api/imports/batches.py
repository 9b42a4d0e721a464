"""Import batches: create (validate, store the file), run (chunks, progress), read, undo.

A real run commits chunk by chunk (progress is visible, a crash keeps what landed: re-running skips the
rows already keyed). A dry run is one transaction rolled back at the end, running the same code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

from sqlalchemy import delete, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.imports.engine import CHUNK, Progress, Run, planned_chunks, process_chunk, read_file, start_run
from services.api.imports.presets import FIELDS, PRESETS
from shared import clock
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.logging import get_logger
from shared.models import ContactIdentity, ImportBatch, ImportRow, Lead, LeadEvent, Property, ReviewItem
from shared.models.contact import Contact
from shared.queue import JobRequest, enqueue_after_commit, take_pending_jobs

log = get_logger(__name__)
RUN_JOB = "run_import"
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")
SendJobs = Callable[[list[JobRequest]], Awaitable[None]]


def parse_mapping(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as error:
        raise _bad_mapping("not JSON") from error
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise _bad_mapping('a JSON object {"CSV header": "field"}')
    unknown = sorted({v for v in mapping.values() if v and v not in FIELDS})
    if unknown:
        raise _bad_mapping(f"unknown fields {unknown}; known: {list(FIELDS)}")
    return mapping


def _bad_mapping(message: str) -> ValidationFailed:
    return ValidationFailed("The column mapping is not valid.", errors=[{"field": "query.mapping", "message": message}])


async def create_batch(
    session: AsyncSession,
    org_id: uuid.UUID,
    user_id: uuid.UUID | None,
    raw: bytes,
    *,
    preset: str,
    mapping: dict[str, str],
    dry_run: bool,
    default_property_id: uuid.UUID | None,
    filename: str | None,
    enqueue: bool = True,
) -> ImportBatch:
    parsed = read_file(raw, preset, mapping)  # a bad file is a 422 now, not a failed job later
    if default_property_id is not None:
        found = await session.scalar(
            select(Property.id).where(Property.id == default_property_id, Property.org_id == org_id)
        )
        if found is None:
            raise ValidationFailed(
                "Unknown property.", errors=[{"field": "query.property_id", "message": "no such property"}]
            )
    now = clock.now()
    batch = ImportBatch(
        id=uuid.uuid4(),
        org_id=org_id,
        created_by_id=user_id,
        filename=filename,
        preset=preset,
        mapping=mapping,
        default_property_id=default_property_id,
        dry_run=dry_run,
        status="queued",
        content=raw,
        total_rows=len(parsed.rows),
        processed_rows=0,
        counts=dict.fromkeys(("created", "attached", "review", "rejected", "unchanged"), 0),
        errors=[],
        details=[],
        ignored_columns=parsed.ignored_columns,
        created_at=now,
        updated_at=now,
    )
    session.add(batch)
    await session.flush()
    if enqueue:
        enqueue_after_commit(session, RUN_JOB, str(batch.id), job_id=f"import:{batch.id}")
    return batch


async def get_batch(session: AsyncSession, org_id: uuid.UUID, batch_id: uuid.UUID, lock: bool = False) -> ImportBatch:
    query = select(ImportBatch).where(ImportBatch.id == batch_id, ImportBatch.org_id == org_id)
    batch = await session.scalar(query.with_for_update() if lock else query)
    if batch is None:
        raise NotFound("Import not found.")
    return batch


async def list_batches(session: AsyncSession, org_id: uuid.UUID) -> list[ImportBatch]:
    query = select(ImportBatch).where(ImportBatch.org_id == org_id).order_by(ImportBatch.created_at.desc())
    return list((await session.scalars(query.limit(100))).all())


async def _save_progress(
    sessionmaker: async_sessionmaker[AsyncSession], run: Run, batch_id: uuid.UUID, **extra: Any
) -> None:
    async with sessionmaker() as session, session.begin():
        await _write_progress(session, run, batch_id, **extra)


async def _write_progress(session: AsyncSession, run: Run, batch_id: uuid.UUID, **extra: Any) -> None:
    await session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id)
        .values(
            processed_rows=run.processed,
            counts=run.counts,
            errors=run.errors[:1000],
            details=run.details,
            updated_at=clock.now(),
            **extra,
        )
    )


async def run_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_id: uuid.UUID,
    *,
    send_jobs: SendJobs | None = None,
    progress: Progress | None = None,
) -> ImportBatch | None:
    """Run a queued import to the end. Idempotent: a finished batch is left alone; a crashed one resumes
    (the rows that landed are keyed, so they count as unchanged the second time)."""
    async with sessionmaker() as session, session.begin():
        batch = await session.scalar(select(ImportBatch).where(ImportBatch.id == batch_id).with_for_update())
        if batch is None or batch.status not in ("queued", "running") or batch.content is None:
            return batch
        batch.status, batch.started_at = "running", clock.now()
        raw, org_id, dry_run = batch.content, batch.org_id, batch.dry_run
        parsed = read_file(raw, batch.preset, batch.mapping)
        run = await start_run(session, org_id, batch.id, batch.created_by_id, batch.default_property_id)
    total = len(parsed.rows)
    chunks = [parsed.rows[start : start + CHUNK] for start in range(0, total, CHUNK)]
    try:
        if dry_run:
            async with sessionmaker() as session:
                transaction = await session.begin()
                try:
                    async with aclosing(planned_chunks(run, chunks, 2, CHUNK)) as planned:  # row 1: header
                        async for plans in planned:
                            await process_chunk(session, run, plans)
                            await _report(sessionmaker, run, batch_id, progress, total)
                finally:
                    await transaction.rollback()
                    take_pending_jobs(session)
        else:
            async with aclosing(planned_chunks(run, chunks, 2, CHUNK)) as planned:
                async for plans in planned:
                    async with sessionmaker() as session:
                        async with session.begin():
                            # no wait for the WAL flush at each chunk's commit: a chunk lost to a server crash
                            # is lost with its progress (same transaction) and re-imported on resume (rows are
                            # keyed); the batch's final "done" is an ordinary commit, which flushes them all
                            await session.execute(_ASYNC_COMMIT)
                            await process_chunk(session, run, plans)
                            # progress in the chunk's own transaction: one commit a chunk, not two, and
                            # what the batch says it processed is exactly what landed
                            await _write_progress(session, run, batch_id)
                        if send_jobs is not None:
                            await send_jobs(take_pending_jobs(session))
                    if progress is not None:
                        await progress(run, total)
    except Exception as error:
        log.exception("imports.failed", import_id=str(batch_id))
        await _save_progress(
            sessionmaker, run, batch_id, status="failed", failure=type(error).__name__, finished_at=clock.now()
        )
        raise
    await _save_progress(sessionmaker, run, batch_id, status="done", finished_at=clock.now(), content=None)
    log.info("imports.done", import_id=str(batch_id), dry_run=dry_run, **run.counts)
    async with sessionmaker() as session:
        return await session.get(ImportBatch, batch_id)


async def _report(
    sessionmaker: async_sessionmaker[AsyncSession], run: Run, batch_id: uuid.UUID, progress: Progress | None, total: int
) -> None:
    await _save_progress(sessionmaker, run, batch_id)
    if progress is not None:
        await progress(run, total)


async def undo_batch(session: AsyncSession, org_id: uuid.UUID, batch_id: uuid.UUID) -> ImportBatch:
    """Take a whole import back: what it created is deleted, what it added to known renters is removed.

    Refused when renters it created have since been merged or have leads from elsewhere: deleting them
    would take other people's work along.
    """
    batch = await get_batch(session, org_id, batch_id, lock=True)
    if batch.dry_run or batch.status != "done":
        raise Conflict(f"Only a finished real import can be undone; this one is {batch.status}.")
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"import:{org_id}"})
    rows = list((await session.scalars(select(ImportRow).where(ImportRow.batch_id == batch.id))).all())
    contacts = [row.contact_id for row in rows if row.contact_created and row.contact_id]
    leads = [row.lead_id for row in rows if row.lead_created and row.lead_id]
    if contacts:
        foreign = await session.scalar(
            select(Lead.id).where(Lead.contact_id.in_(contacts), Lead.id.notin_(leads) if leads else true()).limit(1)
        )
        merged = await session.scalar(
            select(Contact.id).where(Contact.id.in_(contacts), Contact.merged_into_id.is_not(None)).limit(1)
        )
        if foreign is not None or merged is not None:
            raise Conflict("Renters created by this import have since been merged or have other leads.")
    review_ids = [row.review_item_id for row in rows if row.review_item_id]
    event_ids = [event_id for row in rows for event_id in row.event_ids]
    if review_ids:
        await session.execute(delete(ReviewItem).where(ReviewItem.id.in_(review_ids), ReviewItem.org_id == org_id))
    if event_ids:
        await session.execute(delete(LeadEvent).where(LeadEvent.id.in_(event_ids), LeadEvent.org_id == org_id))
    for row in rows:
        for kind, value in row.claimed:
            await session.execute(
                delete(ContactIdentity).where(
                    ContactIdentity.org_id == org_id,
                    ContactIdentity.contact_id == row.contact_id,
                    ContactIdentity.kind == kind,
                    ContactIdentity.value == value,
                )
            )
    if leads:
        await session.execute(delete(Lead).where(Lead.id.in_(leads), Lead.org_id == org_id))
    if contacts:
        await session.execute(delete(Contact).where(Contact.id.in_(contacts), Contact.org_id == org_id))
    await session.execute(delete(ImportRow).where(ImportRow.batch_id == batch.id))
    now = clock.now()
    batch.status, batch.undone_at, batch.updated_at = "undone", now, now
    await session.flush()
    return batch


__all__ = ["PRESETS", "create_batch", "get_batch", "list_batches", "parse_mapping", "run_batch", "undo_batch"]
