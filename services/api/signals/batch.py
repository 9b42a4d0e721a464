"""Apply a batch of signals in one transaction, so that a bad one fails alone.

All signals first go under one savepoint (two statements for the batch). If one fails, that attempt rolls back
and the batch is applied again with one savepoint per signal, so the bad signal fails alone.

Locks first, for the whole batch, in one order every writer uses: the organization's batch lock (one batch
per organization at a time: a renter reached through two different keys in two batches would otherwise
lock the same contact row in opposite orders), the inbound-id locks (idempotency), then every renter's
identity-key locks sorted by name (the order `contacts.resolution.lock_identity_keys` uses), so two
batches, or a batch and a manual add, cannot deadlock each other. Each signal's own
re-locking inside `apply_signal` then finds its locks already held. The unique constraints stay the last
word: a violation rolls back that signal's savepoint and answers 500 for it, so the worker retries it.

Staff notifications (feed entries and their emails) are written once, at the end of the batch: nothing a
later signal decides reads them, and a failed signal's are forgotten with its savepoint (`txmemo.signal_scope`).
"""

from __future__ import annotations

import copy
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.messaging import notify
from services.api.messaging.consent import prefetch_no_records
from services.api.signals.service import apply_signal, prefetch_identities, prefetch_outcomes, remember_outcome
from shared.errors import DomainError
from shared.identity import identity_keys
from shared.logging import get_logger
from shared.outage import is_outage
from shared.queue import PENDING_JOBS_KEY
from shared.schemas.signal import SignalEnvelope, SignalResult

log = get_logger(__name__)

# inbound-id locks (namespace 0, as apply_signal takes them) then identity keys (namespace 42), each sorted
LOCK_BATCH_SQL = text(
    "SELECT count(*) FROM ("
    " SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM"
    " (SELECT unnest(CAST(:orgs AS text[])) AS k ORDER BY 1) AS o"
    " UNION ALL"
    " SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM"
    " (SELECT unnest(CAST(:inbound AS text[])) AS k ORDER BY 1) AS i"
    " UNION ALL"
    " SELECT pg_advisory_xact_lock(hashtextextended(k, 42)) FROM"
    " (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS n"
    ") AS taken"
)


def batch_keys(envelopes: list[SignalEnvelope]) -> set[tuple[uuid.UUID, str, str]]:
    """Every renter's (organization, kind, value) identity keys, without the blocklist: a superset of what
    each signal locks and looks up. Normalized once for the batch's locks and its owners' read."""
    return {
        (envelope.org_id, kind, value)
        for envelope in envelopes
        for kind, value in identity_keys(envelope.signal.contact).usable
    }


def lock_names(
    envelopes: list[SignalEnvelope], keys: set[tuple[uuid.UUID, str, str]]
) -> tuple[list[str], list[str], list[str]]:
    """Every lock the batch can need."""
    orgs = sorted({f"signals-batch:{envelope.org_id}" for envelope in envelopes})
    inbound = sorted({str(envelope.inbound_id) for envelope in envelopes})
    return orgs, inbound, sorted({f"{org_id}:{kind}:{value}" for org_id, kind, value in keys})


async def apply_signals(session: AsyncSession, envelopes: list[SignalEnvelope]) -> list[SignalResult]:
    """The organization's configuration is read once for the whole batch, and no lock is taken twice
    (services/api/txmemo.py); the transaction ends right after this, with the request."""
    with txmemo.batch_scope(session):
        await txmemo.read_config_versions(session, {envelope.org_id for envelope in envelopes})
        txmemo.defer(session, notify.PENDING)  # every signal's notifications and staff emails: two statements
        results = await _apply_batch(session, envelopes)
        await notify.write_pending(session)
        return results


async def _apply_batch(session: AsyncSession, envelopes: list[SignalEnvelope]) -> list[SignalResult]:
    """All signals under one savepoint, or (when one fails) one savepoint per signal."""
    if len(envelopes) > 1:  # one signal locks inside apply_signal: the same order, one statement fewer
        identities = batch_keys(envelopes)
        orgs, inbound, keys = lock_names(envelopes, identities)
        await session.execute(LOCK_BATCH_SQL, {"orgs": orgs, "inbound": inbound, "keys": keys})
        await txmemo.defer_lead_references(session)
        txmemo.note_locks(session, 0, [*orgs, *inbound])
        txmemo.note_locks(session, 42, keys)
        await prefetch_outcomes(session, envelopes)
        await prefetch_identities(session, identities)
        await prefetch_no_records(session, {(org_id, value) for org_id, _, value in identities})
        together = await _apply_together(session, envelopes)
        if together is not None:
            return together
    results: list[SignalResult] = []
    for envelope in envelopes:
        results.append(await _apply_one(session, envelope))
    return results


async def _apply_together(session: AsyncSession, envelopes: list[SignalEnvelope]) -> list[SignalResult] | None:
    """Every signal under one savepoint: two statements for the batch instead of two per signal.

    Nearly every batch applies whole. When a signal fails, the savepoint rolls back with everything the batch
    wrote, what the batch remembered is put back as it was before (memo, queued jobs, decisions), and None
    sends the batch through one savepoint per signal, where a bad signal fails alone as before."""
    saved = {key: copy.copy(value) for key, value in session.info.items() if key != txmemo.MEMO_KEY}
    saved_memo = txmemo.snapshot(session)  # its slots copied one level deeper
    results: list[SignalResult] = []
    try:
        async with session.begin_nested():
            # after the snapshot: the split path inserts at once
            txmemo.defer(session, txmemo.KEYED_ROWS)
            txmemo.defer(session, txmemo.APPEND_ROWS)
            for envelope in envelopes:
                outcome = await apply_signal(session, envelope)
                remember_outcome(session, envelope.inbound_id, outcome)
                results.append(SignalResult(inbound_id=envelope.inbound_id, status=200, outcome=outcome))
            await txmemo.write_appended(session)  # the timeline, automation log and stream rows: one INSERT each
            txmemo.undefer(session, txmemo.APPEND_ROWS)  # what the batch writes after this goes to the session
    except Exception as error:
        if is_outage(error):
            raise  # the database is away: the whole request is a 503, the worker retries the batch
        session.info.clear()
        session.info.update(saved)
        txmemo.restore(session, saved_memo)
        log.info("signals.batch_split", signals=len(envelopes), error=type(error).__name__)
        return None
    return results


async def _apply_one(session: AsyncSession, envelope: SignalEnvelope) -> SignalResult:
    pending = session.info.get(PENDING_JOBS_KEY, [])
    queued = len(pending)
    try:
        with txmemo.signal_scope(session):
            async with session.begin_nested():
                outcome = await apply_signal(session, envelope)
    except DomainError as error:
        del session.info.get(PENDING_JOBS_KEY, [])[queued:]  # jobs of a rolled-back signal are not sent
        return SignalResult(inbound_id=envelope.inbound_id, status=error.status, detail=error.detail)
    except Exception as error:
        if is_outage(error):
            raise  # the database is away: the whole request is a 503, the worker retries the batch
        del session.info.get(PENDING_JOBS_KEY, [])[queued:]
        log.exception("signals.apply_failed", inbound_id=str(envelope.inbound_id), error=type(error).__name__)
        return SignalResult(inbound_id=envelope.inbound_id, status=500, detail="not applied; retry")
    remember_outcome(session, envelope.inbound_id, outcome)  # a twin later in the batch answers the same
    return SignalResult(inbound_id=envelope.inbound_id, status=200, outcome=outcome)
