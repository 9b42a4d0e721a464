"""process_inbound: one stored delivery → parse → resolve property → match → hand off to the API.

Idempotent: a row that is no longer `received` is done, so a second run of the same job (arq may run one
twice, the sweep may queue it again) returns early; a second handoff of the same inbound id is absorbed by
the API, which is idempotent on it. No transaction is held across the parse or the HTTP call: each status
change is its own short transaction.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.matching import match_signal
from services.intake.parsers import Outcome, ParseContext, RawInbound, parse
from shared import clock
from shared.blocklist import blocked_identities
from shared.enums import InboundKind, InboundStatus
from shared.logging import get_logger
from shared.models import InboundMessage, Organization, Property
from shared.schemas.signal import LeadSignal, MatchResult, PropertyHint, SignalEnvelope, SignalOutcome

log = get_logger(__name__)

SIGNALS_PATH = "/v1/internal/signals"
SWEEP_BATCH = 500
REASON_MAX = 500


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


# Core, not an ORM-enabled UPDATE: that costs a tenth of the worker's CPU on the hot path
INBOX: Table = InboundMessage.__table__  # type: ignore[assignment]
CLAIM = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("row_id"), INBOX.c.status == InboundStatus.received.value)
    .values(attempts=INBOX.c.attempts + 1)
    .returning(*INBOX.c)
)

ORG_CONFIG_TTL_SECONDS = 10.0
INLINE_PARSE_MAX_BYTES = 256 * 1024


async def cached_org_config(ctx: dict[str, Any], session: AsyncSession, org_id: uuid.UUID) -> OrgConfig:
    """Per worker process, for a few seconds: three queries a job saved on the intake hot path.

    Staleness is bounded and harmless: the API re-applies the blocklist itself when it applies the signal,
    so a just-added blocklist entry is never used as identity; a just-added property number resolves within
    the TTL.
    """
    cache: dict[uuid.UUID, tuple[float, OrgConfig]] = ctx.setdefault("org_config_cache", {})
    now = time.monotonic()
    cached = cache.get(org_id)
    if cached is not None and cached[0] > now:
        return cached[1]
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


def _max_tries(ctx: dict[str, Any]) -> int:
    if "max_tries" in ctx:
        return int(ctx["max_tries"])
    from services.intake.worker import MAX_TRIES  # lazy: worker imports this module through tasks

    return MAX_TRIES


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession], inbound_id: uuid.UUID, status: InboundStatus, **values: Any
) -> bool:
    async with sessionmaker() as session, session.begin():
        return await _finish_in(session, inbound_id, status, **values)


async def _finish_in(session: AsyncSession, inbound_id: uuid.UUID, status: InboundStatus, **values: Any) -> bool:
    """Write the outcome only if the row is still `received` (a replay or a twin run may have moved it)."""
    result = await session.execute(
        update(INBOX)
        .where(INBOX.c.id == inbound_id, INBOX.c.status == InboundStatus.received.value)
        .values(status=status.value, processed_at=clock.now(), **values)
        .returning(INBOX.c.id)
    )
    return result.first() is not None


async def process_inbound(ctx: dict[str, Any], inbound_id: str) -> str:
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    row_id = uuid.UUID(inbound_id)
    # claim, parse and match in one short transaction (the parse of a webhook takes a millisecond or two);
    # the HTTP handoff happens outside any transaction
    async with sessionmaker() as session, session.begin():
        row = (await session.execute(CLAIM, {"row_id": row_id})).first()
        if row is None:
            log.info("intake.inbound_skipped", inbound_id=inbound_id, outcome="not_received")
            return "skipped"
        config = await cached_org_config(ctx, session, row.org_id)
        org_id, kind = row.org_id, row.kind
        bound = {"inbound_id": inbound_id, "org_id": str(org_id), "kind": kind}
        raw = RawInbound(
            kind=InboundKind(kind),
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
            await _finish_in(
                session, row_id, status, reason=_short(result.reason), parser=result.parser, property_id=about
            )
            log.info("intake.inbound_done", **bound, outcome=status.value, parser=result.parser)
            return status.value
        signal = result.signal
        property_id = resolve_property(signal, config.properties)
        if property_id is not None:
            hint = signal.property.model_copy(update={"property_id": property_id})
            signal = signal.model_copy(update={"property": hint})
        match = await match_signal(session, org_id, signal, config.blocklist)
    common = {"parser": result.parser, "source": signal.source.source[:64], "property_id": property_id}
    envelope = SignalEnvelope(inbound_id=row_id, org_id=org_id, signal=signal, match=match)
    return await _hand_off(ctx, sessionmaker, envelope, common, bound)


async def _hand_off(
    ctx: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
    envelope: SignalEnvelope,
    common: dict[str, Any],
    bound: dict[str, str],
) -> str:
    api: httpx.AsyncClient = ctx["api"]
    stored = {"signal": envelope.signal.model_dump(mode="json"), "match": envelope.match.model_dump(mode="json")}
    try:
        response = await api.post(SIGNALS_PATH, json=envelope.model_dump(mode="json"))
    except httpx.HTTPError as error:
        return await _retry_or_fail(ctx, sessionmaker, envelope.inbound_id, common, bound, type(error).__name__)
    if response.status_code >= 500:
        return await _retry_or_fail(ctx, sessionmaker, envelope.inbound_id, common, bound, str(response.status_code))
    if response.status_code >= 400:
        reason = f"api refused ({response.status_code}): {_problem_detail(response)}"
        await _finish(
            sessionmaker, envelope.inbound_id, InboundStatus.failed, reason=_short(reason), **common, **stored
        )
        log.warning("intake.inbound_done", **bound, outcome="failed", status=response.status_code)
        return InboundStatus.failed.value
    outcome = SignalOutcome.model_validate(response.json())
    await _finish(
        sessionmaker,
        envelope.inbound_id,
        InboundStatus.processed,
        reason=None,
        lead_id=outcome.lead_id,
        contact_id=outcome.contact_id,
        **common,
        **stored,
    )
    log.info(
        "intake.inbound_done",
        **bound,
        outcome="processed",
        lead_id=str(outcome.lead_id),
        verdict=envelope.match.verdict.value,
        created=outcome.created,
    )
    return InboundStatus.processed.value


async def _retry_or_fail(
    ctx: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
    inbound_id: uuid.UUID,
    common: dict[str, Any],
    bound: dict[str, str],
    error: str,
) -> str:
    from services.intake.tasks import retry_later  # lazy: tasks imports this module

    tries = int(ctx.get("job_try", 1))
    if tries < _max_tries(ctx):
        log.warning("intake.api_unavailable", **bound, job_try=tries, error=error)
        raise retry_later(ctx)
    reason = f"api unavailable after {tries} tries ({error})"
    await _finish(sessionmaker, inbound_id, InboundStatus.failed, reason=reason, **common)
    log.error("intake.inbound_done", **bound, outcome="failed", job_try=tries, error=error)
    return InboundStatus.failed.value


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no problem details"
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or "no problem details")
    return "no problem details"


def _short(reason: str | None) -> str | None:
    return reason[:REASON_MAX] if reason else reason


async def sweep_inbound(ctx: dict[str, Any]) -> int:
    """Re-queue rows still `received` after the grace period: a job lost in Redis loses nothing.

    The job id carries `attempts`, so a row whose earlier sweep job already ran gets a new one, while a
    sweep repeating before any progress is deduplicated by arq.
    """
    settings = ctx["settings"]
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    cutoff = clock.now() - timedelta(seconds=settings.inbound_sweep_after_seconds)
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(InboundMessage.id, InboundMessage.attempts)
                .where(
                    InboundMessage.status == InboundStatus.received.value,
                    InboundMessage.received_at <= cutoff,
                    # untouched for as long: a job still retrying (backoff < the grace period) is left alone
                    InboundMessage.updated_at <= cutoff,
                )
                .order_by(InboundMessage.received_at)
                .limit(SWEEP_BATCH)
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


__all__ = ["MatchResult", "process_inbound", "resolve_property", "sweep_inbound"]
