"""The daily unit digest, sent: one outbox message per renter and local day, in their property's morning.

Why this shape:
- **Per renter, not per lead.** A renter with two opted-in leads (two properties) gets one message listing
  both properties' new units; the anchor lead (the most recently updated opted-in one) carries the message
  and gives the timezone.
- **Once a day, even across crashes and twin runs.** The outbox row's idempotency key is
  `unit-digest:<contact_id>:<local date>`; `queue_message` inserts it ON CONFLICT DO NOTHING in the same
  transaction that decided it, so a second run (or a second worker) finds the row and sends nothing more.
- **"New" means since the last digest.** The window starts where the renter's previous digest row was
  decided (its `created_at`), else 24 h back, never more than `MAX_LOOKBACK` back; a morning with nothing new
  writes nothing and the window simply stays open until the next morning with something to say.
- **The messaging layer decides consent, pause and quiet hours.** `queue_message` (kind `proactive`)
  suppresses an opted-out address or a paused lead with the reason, holds an SMS for quiet hours, and the
  send job checks consent again; email gets the one-click unsubscribe link at send time. Here we only avoid
  deciding while the renter's quiet hours are on, so an email digest also lands in the allowed morning.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Time, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.messaging.consent import is_opted_out
from services.api.messaging.outbox import queue_message
from services.api.messaging.quiet_hours import is_quiet
from services.api.units.digest import newly_available_matches
from services.api.units.schemas import UnitMatch
from shared import clock
from shared.config import Settings
from shared.enums import LeadStatus
from shared.errors import NotFound
from shared.logging import get_logger
from shared.models import Contact, Lead, MessagingSettings, Organization, OutboundMessage, Property
from shared.models.contact import CONTACT_LOCK
from shared.queue import job_transaction
from shared.service_token import resolve_secret_key
from shared.signing import BadToken, sign, verify
from shared.working_hours import zone

log = get_logger(__name__)

TEMPLATE = "unit_digest"
DIGEST_HOUR = time(9, 0)  # the morning starts here, local time …
MORNING = timedelta(hours=3)  # … and a missed cron run may still catch up this long after
FIRST_LOOKBACK = timedelta(hours=24)
MAX_LOOKBACK = timedelta(days=7)
MAX_LISTED = 10
CLOSED = (LeadStatus.lost, LeadStatus.leased)
STOP_PURPOSE = "unit_digest_stop"
STOP_TTL = timedelta(days=365)


@dataclass
class Renter:
    org_id: uuid.UUID
    contact_id: uuid.UUID
    lead_ids: list[uuid.UUID]  # opted-in open leads, the anchor (most recently updated) first
    timezone: str


def digest_key(contact_id: uuid.UUID, local_day: date) -> str:
    return f"unit-digest:{contact_id}:{local_day.isoformat()}"


def in_morning(now: datetime, timezone: str) -> date | None:
    """The local day when `now` is in that day's digest morning there, else None."""
    local = now.astimezone(zone(timezone))
    start = datetime.combine(local.date(), DIGEST_HOUR, tzinfo=local.tzinfo)
    return local.date() if start <= local < start + MORNING else None


async def opted_in_renters(session: AsyncSession, now: datetime) -> list[Renter]:
    """Every renter with an opted-in open lead (open or nurture: closed leads get no proactive mail) whose
    lead's timezone is in its digest morning now."""
    timezone = func.coalesce(Property.timezone, Organization.timezone)
    local_time = cast(func.timezone(timezone, now), Time)
    start, end = DIGEST_HOUR, (datetime.combine(date.min, DIGEST_HOUR) + MORNING).time()
    rows = await session.execute(
        select(Lead.org_id, Lead.contact_id, Lead.id, timezone)
        .join(Organization, Organization.id == Lead.org_id)
        .outerjoin(Property, Property.id == Lead.property_id)
        .where(Lead.unit_digest_opt_in.is_(True), Lead.status.notin_(CLOSED))
        .where(local_time >= start, local_time < end)
        .order_by(Lead.contact_id, Lead.updated_at.desc(), Lead.id)
    )
    renters: dict[uuid.UUID, Renter] = {}
    for org_id, contact_id, lead_id, lead_timezone in rows:
        renter = renters.get(contact_id)
        if renter is None:
            renters[contact_id] = Renter(org_id, contact_id, [lead_id], lead_timezone)
        else:
            renter.lead_ids.append(lead_id)
    return list(renters.values())


async def last_digest_at(session: AsyncSession, renter: Renter) -> datetime | None:
    return await session.scalar(
        select(func.max(OutboundMessage.created_at)).where(
            OutboundMessage.org_id == renter.org_id,
            OutboundMessage.template == TEMPLATE,
            OutboundMessage.lead_id.in_(select(Lead.id).where(Lead.contact_id == renter.contact_id)),
        )
    )


def stop_link(settings: Settings, org_id: uuid.UUID, contact_id: uuid.UUID, now: datetime) -> str:
    """A signed link that turns the digest off for this renter (and nothing else: they keep other mail)."""
    token = sign(
        resolve_secret_key(settings), STOP_PURPOSE, {"org": str(org_id), "contact": str(contact_id)}, now + STOP_TTL
    )
    return f"{(settings.public_url or settings.api_base_url()).rstrip('/')}/v1/unit-digest/stop/{token}"


async def stop_digest(session: AsyncSession, settings: Settings, token: str) -> int:
    """Turn off `unit_digest_opt_in` on every lead of the renter the token names; NotFound for a bad token."""
    try:
        payload = verify(resolve_secret_key(settings), STOP_PURPOSE, token)
        org_id, contact_id = uuid.UUID(payload["org"]), uuid.UUID(payload["contact"])
    except (BadToken, KeyError, ValueError) as error:
        raise NotFound("This link is not valid.") from error
    changed = await session.scalars(
        update(Lead)
        .where(Lead.org_id == org_id, Lead.contact_id == contact_id, Lead.unit_digest_opt_in.is_(True))
        .values(unit_digest_opt_in=False, updated_at=clock.now(), version=Lead.version + 1)
        .returning(Lead.id)
    )
    stopped = len(changed.all())
    log.info("units.digest_stopped", contact_id=str(contact_id), leads=stopped)
    return stopped


async def send_digest(
    session: AsyncSession, renter: Renter, now: datetime, settings: Settings
) -> OutboundMessage | None:
    """Decide one renter's digest for today (None: not due, already decided, or nothing new matches)."""
    local_day = in_morning(now, renter.timezone)
    if local_day is None:
        return None
    key = digest_key(renter.contact_id, local_day)
    if await _taken(session, renter.org_id, key):
        return None
    messaging = await session.get(MessagingSettings, renter.org_id)
    if is_quiet(now, renter.timezone, messaging.quiet_hours if messaging else None):
        return None  # a later run this morning, once the renter's quiet hours are over
    # the renter's row, then the key again: a twin run waits here and then finds the key taken
    contact = await session.get(Contact, renter.contact_id, with_for_update=CONTACT_LOCK, populate_existing=True)
    if await _taken(session, renter.org_id, key):
        return None
    leads = list(
        (await session.scalars(select(Lead).where(Lead.id.in_(renter.lead_ids), Lead.org_id == renter.org_id))).all()
    )
    leads.sort(key=lambda lead: renter.lead_ids.index(lead.id))
    leads = [lead for lead in leads if lead.unit_digest_opt_in and lead.status not in CLOSED]
    if contact is None or not leads:
        return None
    last = await last_digest_at(session, renter)
    since = max(last if last is not None else now - FIRST_LOOKBACK, now - MAX_LOOKBACK)
    matches = await _matches(session, leads, since, now)
    if not matches:
        return None
    anchor = leads[0]
    channel = await _channel(session, renter.org_id, contact)
    names = await _property_names(session, renter.org_id, {m.unit.property_id for m in matches})
    message = await queue_message(
        session,
        lead=anchor,
        channel=channel,
        template=TEMPLATE,
        kind="proactive",
        reason="unit_digest",
        rule={
            "id": TEMPLATE,
            "since": since.isoformat(),
            "until": now.isoformat(),
            "unit_ids": [str(m.unit.id) for m in matches],
        },
        idempotency_key=key,
        variables={
            "unit_list": unit_list(matches, names, anchor.property_id, channel, local_day),
            "digest_stop_link": stop_link(settings, renter.org_id, renter.contact_id, now),
        },
    )
    log.info("units.digest_decided", message_id=str(message.id), lead_id=str(anchor.id), units=len(matches))
    return message


async def _taken(session: AsyncSession, org_id: uuid.UUID, key: str) -> bool:
    found = await session.scalar(
        select(OutboundMessage.id).where(OutboundMessage.org_id == org_id, OutboundMessage.idempotency_key == key)
    )
    return found is not None


async def _matches(session: AsyncSession, leads: list[Lead], since: datetime, until: datetime) -> list[UnitMatch]:
    best: dict[uuid.UUID, UnitMatch] = {}
    for lead in leads:
        for match in await newly_available_matches(session, lead, since, until):
            kept = best.get(match.unit.id)
            if kept is None or match.score > kept.score:
                best[match.unit.id] = match
    return sorted(best.values(), key=lambda m: (-m.score, m.effective_rent or 0, m.unit.number))


async def _channel(session: AsyncSession, org_id: uuid.UUID, contact: Contact) -> str:
    """Email ("daily email updates"); SMS only for a renter without a usable email. An address that opted
    out stays the choice when there is no other, so the outbox records the suppression and why."""
    for channel, address in (("email", contact.primary_email), ("sms", contact.primary_phone)):
        if address and not await is_opted_out(session, org_id, channel, contact=contact, address=address):
            return channel
    return "email" if contact.primary_email else "sms"


async def _property_names(session: AsyncSession, org_id: uuid.UUID, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(Property.id, Property.name).where(Property.org_id == org_id, Property.id.in_(ids))
    )
    return {row.id: row.name for row in rows}


def unit_list(
    matches: list[UnitMatch], names: dict[uuid.UUID, str], home: uuid.UUID | None, channel: str, today: date
) -> str:
    """One line per unit (email) or a compact list (SMS); the property is named when it is not the lead's."""
    parts = []
    for match in matches[:MAX_LISTED]:
        beds = "studio" if match.bedrooms == 0 else f"{match.bedrooms} bd"
        rent = f"${match.effective_rent:,}/mo" if match.effective_rent is not None else "rent on request"
        when = match.unit.available_on
        ready = f"available {when:%b} {when.day}" if when and when > today else "available now"
        where = f" at {names[match.unit.property_id]}" if match.unit.property_id != home else ""
        parts.append(f"Unit {match.unit.number}{where}: {match.floor_plan}, {beds}, {rent}, {ready}")
    more = len(matches) - MAX_LISTED
    if channel == "sms":
        text = "; ".join(parts)
        return f"{text} (+{more} more)" if more > 0 else text
    lines = [f"- {part}" for part in parts]
    if more > 0:
        lines.append(f"- and {more} more")
    return "\n".join(lines)


async def send_unit_digests(ctx: dict[str, Any]) -> int:
    """Each renter due now gets today's digest decided, one transaction per renter, so
    one renter's failure neither holds back nor repeats the others'."""
    now = clock.now()
    async with ctx["sessionmaker"]() as session:
        renters = await opted_in_renters(session, now)
    decided = 0
    for renter in renters:
        try:
            async with job_transaction(ctx) as session:
                if await send_digest(session, renter, now, ctx["settings"]) is not None:
                    decided += 1
        except Exception:  # the next run (15 min) tries this renter again; the others go on now
            log.exception("units.digest_failed", contact_id=str(renter.contact_id))
    return decided


async def unit_digests(ctx: dict[str, Any]) -> int:
    """The cron entry. The worker fires its crons every 15 s; the digest decides once a quarter hour (the
    firing in the first 15 s of :00, :15, :30 and :45), which is often enough for a three-hour morning."""
    now = clock.now()
    if now.minute % 15 or now.second >= 15:
        return 0
    return await send_unit_digests(ctx)
