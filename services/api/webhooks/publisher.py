"""The single publisher: gives committed stream rows their organization's next positions, in order.

Why positions are not assigned in the writing transaction: a per-organization counter row updated by every
intake transaction would serialize that organization's intake on one row lock. Instead a writer only
inserts (a sequence gives `position`, which never blocks), and one publisher at a time (a transaction-scoped
advisory lock) reads the rows that are *committed* and still without `seq`, in `position` order, and numbers
them from `stream_heads`. A row whose transaction commits later is numbered in a later run, after everything
already numbered, so the stream only ever grows at its end: stable and gap-free within an organization.
Events of one lead are written under that lead's row lock, so they commit, and are numbered, in order.

At publish time the payload is finished: the versioned envelope plus a snapshot of the lead as it is now
(one query per organization per batch). The stream and every webhook carry exactly these bytes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.leads.queries import lead_select, row_to_out
from services.api.webhooks.catalog import PAYLOAD_VERSION
from shared import clock
from shared.db import json_text
from shared.logging import get_logger
from shared.models import Lead
from shared.queue import enqueue_after_commit

log = get_logger(__name__)
# the leads of a batch as one uuid[] parameter: one statement text whatever their number (an IN list is a new one)
LEAD_IDS = ARRAY(Lead.id.type)

PUBLISHER_LOCK = 0x6775657374_15  # any constant; one publisher at a time across workers
BATCH = 500
DELIVER_JOB = "deliver_webhooks"
DELIVER_JOB_ID = "webhooks.deliver"

_ASSIGN_HEADS = text(
    """
    INSERT INTO stream_heads (org_id, last_seq)
    SELECT * FROM unnest(CAST(:orgs AS uuid[]), CAST(:counts AS bigint[]))
    ON CONFLICT (org_id) DO UPDATE SET last_seq = stream_heads.last_seq + EXCLUDED.last_seq
    RETURNING org_id, last_seq
    """
)
_PUBLISH = text(
    """
    UPDATE stream_events AS e SET seq = v.seq, payload = CAST(v.payload AS jsonb), published_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:seqs AS bigint[]), CAST(:payloads AS text[])) AS v(id, seq, payload)
    WHERE e.id = v.id
    """
)
_FAN_OUT = text(
    """
    INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, seq, lead_id, event_type, status,
                                    attempts, next_attempt_at, log, created_at, updated_at)
    SELECT gen_random_uuid(), e.org_id, w.id, e.id, e.seq, e.lead_id, e.type, 'pending', 0, :now, '[]', :now, :now
    FROM stream_events AS e
    JOIN webhook_endpoints AS w ON w.org_id = e.org_id AND w.enabled AND e.type = ANY(w.events)
    WHERE e.id = ANY(CAST(:ids AS uuid[]))
    ON CONFLICT (org_id, endpoint_id, event_id) DO NOTHING
    """
)


async def publish_batch(session: AsyncSession) -> int | None:
    """Number one batch; None when another publisher holds the lock (it will see these rows too)."""
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(PUBLISHER_LOCK))):
        return None
    rows = (
        await session.execute(
            text(
                "SELECT id, org_id, type, lead_id, occurred_at, data FROM stream_events "
                "WHERE seq IS NULL ORDER BY position LIMIT :limit"
            ),
            {"limit": BATCH},
        )
    ).all()
    if not rows:
        return 0
    by_org: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        by_org[row.org_id].append(row)
    heads = await session.execute(
        _ASSIGN_HEADS, {"orgs": list(by_org), "counts": [len(events) for events in by_org.values()]}
    )
    last = {org_id: last_seq for org_id, last_seq in heads}
    ids: list[uuid.UUID] = []
    seqs: list[int] = []
    payloads: list[str] = []
    for org_id, events in by_org.items():
        snapshots = await _lead_snapshots(session, org_id, {e.lead_id for e in events if e.lead_id})
        first = last[org_id] - len(events) + 1
        for offset, event in enumerate(events):
            seq = first + offset
            ids.append(event.id)
            seqs.append(seq)
            payloads.append(json_text(envelope(event, seq, snapshots.get(event.lead_id))))
    now = clock.now()
    await session.execute(_PUBLISH, {"ids": ids, "seqs": seqs, "payloads": payloads, "now": now})
    fanned = await session.execute(_FAN_OUT, {"ids": ids, "now": now})
    if getattr(fanned, "rowcount", 0):
        enqueue_after_commit(session, DELIVER_JOB, job_id=DELIVER_JOB_ID)
    log.info("events.published", count=len(ids), organizations=len(by_org))
    return len(ids)


def envelope(event: Any, seq: int, lead: dict[str, Any] | None) -> dict[str, Any]:
    """The versioned body (Standard Webhooks shape: type, timestamp, data)."""
    data: dict[str, Any] = {"lead_id": str(event.lead_id) if event.lead_id else None}
    if event.lead_id:
        data["lead"] = lead
    data.update(event.data)
    return {
        "id": str(event.id),
        "seq": seq,
        "type": event.type,
        "version": PAYLOAD_VERSION,
        "timestamp": event.occurred_at.isoformat(),
        "data": data,
    }


async def _lead_snapshots(
    session: AsyncSession, org_id: uuid.UUID, lead_ids: set[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    if not lead_ids:
        return {}
    ids = bindparam("lead_ids", list(lead_ids), type_=LEAD_IDS)
    rows = (await session.execute(lead_select(org_id).where(Lead.id == any_(ids)))).mappings().all()
    return {row["id"]: row_to_out(row).model_dump(mode="json") for row in rows}
