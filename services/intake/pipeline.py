"""The intake pipeline: stored deliveries → parsed, resolved, matched envelopes → outcomes written back.

Pure steps that return values: the job (jobs.py) owns sessions, the API hop (client.py) and retries.
Idempotent: only rows still `received` are claimed and finished, so a twin run of a job, or the sweep
queueing a row again, changes nothing; a second handoff of the same inbound id is absorbed by the API.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, Table, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.matching import match_signal
from services.intake.parsers import Outcome, ParseContext, RawInbound, parse
from shared import clock
from shared.blocklist import blocked_identities
from shared.enums import InboundKind, InboundStatus
from shared.identity import IdentityKeys, identity_keys
from shared.logging import get_logger
from shared.models import InboundMessage, Organization, Property
from shared.repositories import driver
from shared.repositories.identities import find_owners_of_many
from shared.schemas.signal import LeadSignal, PropertyHint, SignalEnvelope, SignalResult

log = get_logger(__name__)

REASON_MAX = 500
ORG_CONFIG_TTL_SECONDS = 10.0
INLINE_PARSE_MAX_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class OrgConfig:
    """What the organization configured that parsing, property resolution and matching need."""

    default_country: str
    properties: list[Property]
    blocklist: frozenset[tuple[str, str]]

    def parse_context(self) -> ParseContext:
        return ParseContext(
            default_country=self.default_country,
            own_phones=frozenset(phone for prop in self.properties for phone in prop.phone_numbers),
            own_emails=frozenset(prop.inbound_alias for prop in self.properties if prop.inbound_alias),
            blocked=self.blocklist,
        )


# Core, not ORM-enabled statements: the ORM cost a tenth of the worker's CPU on the hot path
INBOX: Table = InboundMessage.__table__  # type: ignore[assignment]
# How long a claim keeps other jobs off a row. Longer than a batch can take (the HTTP timeout is 10 s); a
# worker that dies leaves its rows to the sweep, which clears the lease of every row it queues again.
LEASE = timedelta(seconds=60)


# A row nobody holds (no row lock, no live lease) that is still `received`; and the lease a claim takes.
def _claimable(row: str = "") -> str:
    prefix = f"{row}." if row else ""
    return f"{prefix}status = 'received' AND ({prefix}claimed_until IS NULL OR {prefix}claimed_until < :now)"


_TAKE_LEASE = """
    UPDATE inbound_messages AS i
    SET attempts = i.attempts + 1, claimed_until = :lease, updated_at = :now
    FROM claimed
    WHERE i.id = claimed.id
    RETURNING i.*
"""
# The job's own row, then up to `:more` other rows of the same organization still `received`, oldest first;
# rows another job holds (row lock or live lease) are skipped, never waited for.
CLAIM_BATCH = text(
    f"""
    WITH own AS (
        SELECT id, org_id FROM inbound_messages
        WHERE id = :row_id AND {_claimable()}
        FOR NO KEY UPDATE SKIP LOCKED
    ), more AS (
        SELECT m.id FROM inbound_messages AS m, own
        WHERE m.org_id = own.org_id AND m.id <> own.id AND {_claimable("m")}
        ORDER BY m.received_at
        LIMIT :more
        FOR NO KEY UPDATE OF m SKIP LOCKED
    ), claimed AS (SELECT id FROM own UNION ALL SELECT id FROM more)
    {_TAKE_LEASE}
    """  # noqa: S608 - fixed fragments, values are bound parameters
)
# A drain's batch: the organization's oldest `received` rows nobody holds (no row of its own to start from).
CLAIM_ORG = text(
    f"""
    WITH claimed AS (
        SELECT id FROM inbound_messages
        WHERE org_id = :org_id AND {_claimable()}
        ORDER BY received_at
        LIMIT :batch
        FOR NO KEY UPDATE SKIP LOCKED
    )
    {_TAKE_LEASE}
    """  # noqa: S608 - fixed fragments, values are bound parameters
)
RELEASE = (
    update(INBOX)
    .where(INBOX.c.id == func.any(bindparam("row_ids")), INBOX.c.status == InboundStatus.received.value)
    .values(claimed_until=None)
)


async def cached_org_config(cache: dict[uuid.UUID, Any], session: AsyncSession, org_id: uuid.UUID) -> OrgConfig:
    """Per worker process, for a few seconds: three queries a job saved on the intake hot path.

    Staleness is bounded and harmless: the API re-applies the blocklist itself when it applies the signal,
    so a just-added blocklist entry is never used as identity; a just-added property number resolves within
    the TTL.
    """
    now = time.monotonic()
    cached = cache.get(org_id)
    if cached is not None and cached[0] > now:
        return cached[1]  # type: ignore[no-any-return]
    config = await load_org_config(session, org_id)
    cache[org_id] = (now + ORG_CONFIG_TTL_SECONDS, config)
    return config


async def load_org_config(session: AsyncSession, org_id: uuid.UUID) -> OrgConfig:
    country = await session.scalar(select(Organization.default_country).where(Organization.id == org_id))
    properties = list((await session.scalars(select(Property).where(Property.org_id == org_id))).all())
    # configured entries plus the org's own lines and aliases: the same rule the API applies
    blocked = await blocked_identities(session, org_id)
    return OrgConfig(default_country=country or "US", properties=properties, blocklist=blocked)


def resolve_property(signal: LeadSignal | PropertyHint, properties: list[Property]) -> uuid.UUID | None:
    """Listing id, then tracking number, then inbound alias, then the exact name; archived never match.

    A name is the fallback: a CallRail company or RingCentral callee name, a form's `property` value.
    """
    hint = signal.property if isinstance(signal, LeadSignal) else signal
    active = [prop for prop in properties if not prop.is_archived]
    checks = [
        (hint.listing_id, lambda prop, value: value in prop.listing_ids),
        (hint.tracking_number, lambda prop, value: value in prop.phone_numbers),
        (
            hint.inbound_alias,
            lambda prop, value: bool(prop.inbound_alias) and prop.inbound_alias.lower() == value.strip().lower(),
        ),
        (hint.name, lambda prop, value: prop.name.strip().casefold() == value.strip().casefold()),
    ]
    for value, found in checks:
        if not value:
            continue
        hits = [prop.id for prop in active if found(prop, value)]
        if len(hits) == 1:
            return hits[0]
    return None


@dataclass(slots=True)
class Prepared:
    """One claimed row after parse and match: an envelope to hand off, or an outcome already final."""

    inbound_id: uuid.UUID
    bound: dict[str, str]
    envelope: dict[str, Any] | None = None  # JSON-ready SignalEnvelope, dumped once
    verdict: str | None = None
    common: dict[str, Any] = field(default_factory=dict)
    status: str | None = None  # set when finished without the API (ignored, failed at parse)


async def claim(session: AsyncSession, inbound_id: uuid.UUID, batch: int = 1) -> list[Row[Any]]:
    """The rows this job works on (attempts + 1, leased), oldest first, its own row among them; none when
    its own row is no longer `received` or another job holds it (that job finishes it)."""
    now = clock.now()
    params = {"row_id": inbound_id, "now": now, "lease": now + LEASE, "more": max(0, batch - 1)}
    rows = list((await session.execute(CLAIM_BATCH, params)).all())
    return sorted(rows, key=lambda row: (row.received_at, row.id))


async def claim_for_org(session: AsyncSession, org_id: uuid.UUID, batch: int) -> list[Row[Any]]:
    """Up to `batch` of the organization's `received` rows that no job holds (attempts + 1, leased), oldest
    first: what a drain job (jobs.drain_inbound) works on."""
    now = clock.now()
    params = {"org_id": org_id, "now": now, "lease": now + LEASE, "batch": batch}
    rows = list((await session.execute(CLAIM_ORG, params)).all())
    return sorted(rows, key=lambda row: (row.received_at, row.id))


async def release(session: AsyncSession, inbound_ids: list[uuid.UUID]) -> None:
    """Give rows back (they stay `received`): the retry of this job, or any other job, may claim them."""
    if inbound_ids:
        await session.execute(RELEASE, {"row_ids": inbound_ids})


async def prepare(cache: dict[uuid.UUID, Any], session: AsyncSession, rows: list[Row[Any]]) -> list[Prepared]:
    """Parse and match each row; rows that end here (ignored, failed) are finished in the same session."""
    finished: list[dict[str, Any]] = []
    parsed: list[Prepared | Parsed] = []
    for row in rows:
        config = await cached_org_config(cache, session, row.org_id)
        parsed.append(await _parse_one(row, config, finished))
    # every renter of the batch looked up in one read (was one per row)
    wanted = {
        (item.row.org_id, kind, value)
        for item in parsed
        if isinstance(item, Parsed)
        for kind, value in item.keys.usable
    }
    owners = await find_owners_of_many(session, wanted)
    prepared: list[Prepared] = []
    for item in parsed:
        if isinstance(item, Prepared):
            prepared.append(item)
            continue
        row, signal = item.row, item.signal
        match = await match_signal(session, row.org_id, signal, item.config.blocklist, owners, item.keys)
        envelope = SignalEnvelope(inbound_id=row.id, org_id=row.org_id, signal=signal, match=match)
        prepared.append(
            Prepared(row.id, item.bound, envelope.model_dump(mode="json"), match.verdict.value, item.common)
        )
    await finish(session, finished)
    return prepared


@dataclass(slots=True)
class Parsed:
    """A row whose parse gave a signal, waiting for the batch's identity read."""

    row: Row[Any]
    config: OrgConfig
    bound: dict[str, str]
    signal: LeadSignal
    common: dict[str, Any]
    keys: IdentityKeys


async def _parse_one(row: Row[Any], config: OrgConfig, finished: list[dict[str, Any]]) -> Prepared | Parsed:
    bound = {"inbound_id": str(row.id), "org_id": str(row.org_id), "kind": row.kind}
    raw = RawInbound(
        kind=InboundKind(row.kind),
        body=row.body,
        content_type=row.content_type,
        received_at=row.received_at,
        headers=dict(row.headers or {}),
        query=dict(row.query or {}),
    )
    # parsers are pure and synchronous: a large email goes to a thread so it cannot stall the other jobs,
    # a webhook-sized body is parsed inline (a thread hop costs more than the parse)
    if len(raw.body) > INLINE_PARSE_MAX_BYTES:
        result = await asyncio.to_thread(parse, raw, config.parse_context())
    else:
        result = parse(raw, config.parse_context())
    if result.outcome != Outcome.signal or result.signal is None:
        status = InboundStatus.ignored if result.outcome == Outcome.ignored else InboundStatus.failed
        # an ignored delivery may still concern a property (anonymous missed calls are counted per property)
        about = resolve_property(result.property, config.properties) if result.property else None
        finished.append(
            outcome_values(row.id, status, reason=short(result.reason), parser=result.parser, property_id=about)
        )
        log.info("intake.inbound_done", **bound, outcome=status.value, parser=result.parser)
        return Prepared(row.id, bound, status=status.value)
    signal = result.signal
    property_id = resolve_property(signal, config.properties)
    if property_id is not None:
        hint = signal.property.model_copy(update={"property_id": property_id})
        signal = signal.model_copy(update={"property": hint})
    common = {"parser": result.parser, "source": signal.source.source[:64], "property_id": property_id}
    return Parsed(row, config, bound, signal, common, identity_keys(signal.contact, config.blocklist))


def outcome_values(inbound_id: uuid.UUID, status: InboundStatus, **values: Any) -> dict[str, Any]:
    return {"row_id": inbound_id, "status": status.value, "processed_at": clock.now(), "claimed_until": None, **values}


def applied_values(item: Prepared, result: SignalResult) -> dict[str, Any]:
    """What the API's answer for one signal writes on its row (None: not applied, the row stays)."""
    assert item.envelope is not None
    stored = {"signal": item.envelope["signal"], "match": item.envelope["match"]}
    if result.status < 400 and result.outcome is not None:
        outcome = result.outcome
        log.info(
            "intake.inbound_done",
            **item.bound,
            outcome="processed",
            lead_id=str(outcome.lead_id),
            verdict=item.verdict,
            created=outcome.created,
        )
        return outcome_values(
            item.inbound_id,
            InboundStatus.processed,
            reason=None,
            lead_id=outcome.lead_id,
            contact_id=outcome.contact_id,
            **item.common,
            **stored,
        )
    reason = f"api refused ({result.status}): {result.detail or 'no problem details'}"
    log.warning("intake.inbound_done", **item.bound, outcome="failed", status=result.status)
    return outcome_values(item.inbound_id, InboundStatus.failed, reason=short(reason), **item.common, **stored)


async def finish(session: AsyncSession, outcomes: list[dict[str, Any]]) -> None:
    """Write outcomes, only on rows still `received` (a replay or a twin run may have moved them).

    One `UPDATE … FROM unnest` per shape of outcome (rows with the same columns, `driver.update_rows`): an
    executemany ran the UPDATE once per row.
    """
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for values in outcomes:
        shapes[tuple(sorted(values))].append(values)
    for columns, batch in shapes.items():
        names = [name for name in columns if name != "row_id"]
        rows = [{"id": values["row_id"], **{name: values[name] for name in names}} for values in batch]
        await driver.update_rows(session, INBOX, rows, condition=STILL_RECEIVED)


STILL_RECEIVED = f"t.status = '{InboundStatus.received.value}'"


def short(reason: str | None) -> str | None:
    return reason[:REASON_MAX] if reason else reason
