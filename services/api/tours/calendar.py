"""iCalendar for tours (the `icalendar` library): one .ics per tour for confirmations and reminders, and an
agent's feed that calendar apps subscribe to through a signed URL (shared.signing, purpose calendar_feed).

Events carry the renter's name and the property, never a phone number or email. UID is stable per tour and
SEQUENCE grows with each change, so a rescheduled tour moves in the subscriber's calendar and a canceled one
shows as CANCELLED.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import icalendar
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock, signing
from shared.enums import TourStatus
from shared.errors import NotFound
from shared.models import Contact, Lead, Property, Tour, User

PURPOSE = "calendar_feed"
PRODID = "-//guestcard//tours//EN"
FEED_PAST = timedelta(days=30)
FEED_FUTURE = timedelta(days=180)
_TYPE_WORDS = {"in_person": "in-person tour", "self_guided": "self-guided tour", "virtual": "virtual tour"}


@dataclass(slots=True)
class TourContext:
    tour: Tour
    renter: str | None
    property: Property | None
    agent: str | None


def feed_token(key: str, org_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return signing.sign(key, PURPOSE, {"org": str(org_id), "user": str(user_id)})


def read_feed_token(key: str, token: str, user_id: uuid.UUID) -> uuid.UUID:
    """The organization of a good token for this user; NotFound otherwise (no hint which part was wrong)."""
    try:
        payload = signing.verify(key, PURPOSE, token)
    except signing.BadToken as error:
        raise NotFound("Calendar not found.") from error
    if payload.get("user") != str(user_id):
        raise NotFound("Calendar not found.")
    return uuid.UUID(str(payload["org"]))


def _address(prop: Property | None) -> str | None:
    if prop is None:
        return None
    parts = [prop.name, prop.address_line1, prop.address_line2, prop.city, prop.state, prop.postal_code]
    return ", ".join(part for part in parts if part)


def event(ctx: TourContext, stamp: datetime) -> icalendar.Event:
    tour = ctx.tour
    item = icalendar.Event()
    item.add("uid", f"tour-{tour.id}@guestcard")
    item.add("dtstamp", stamp)
    item.add("dtstart", tour.starts_at)
    item.add("dtend", tour.ends_at)
    item.add("sequence", tour.sequence)
    words = _TYPE_WORDS.get(tour.tour_type, "tour")
    where = ctx.property.name if ctx.property else None
    item.add("summary", " · ".join(p for p in (words.capitalize(), ctx.renter, where) if p))
    if (address := _address(ctx.property)) is not None:
        item.add("location", address)
    details = [f"Type: {words}"]
    if ctx.agent:
        details.append(f"Agent: {ctx.agent}")
    if tour.notes:
        details.append(tour.notes)
    item.add("description", "\n".join(details))
    canceled = tour.status == TourStatus.canceled
    item.add("status", "CANCELLED" if canceled else "CONFIRMED")
    item.add("transp", "TRANSPARENT" if canceled else "OPAQUE")
    return item


def calendar(contexts: list[TourContext], name: str | None = None) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if name:
        cal.add("x-wr-calname", name)
    stamp = clock.now()
    for ctx in contexts:
        cal.add_component(event(ctx, stamp))
    return cal.to_ical()


async def _contexts(session: AsyncSession, query_filter: list, limit: int) -> list[TourContext]:  # type: ignore[type-arg]
    rows = await session.execute(
        select(Tour, Contact.full_name, Property, User.name)
        .join(Lead, Lead.id == Tour.lead_id)
        .join(Contact, Contact.id == Lead.contact_id)
        .outerjoin(Property, Property.id == Tour.property_id)
        .outerjoin(User, User.id == Tour.agent_id)
        .where(*query_filter)
        .order_by(Tour.starts_at)
        .limit(limit)
    )
    return [TourContext(tour, renter, prop, agent) for tour, renter, prop, agent in rows]


async def tour_ics(session: AsyncSession, org_id: uuid.UUID, tour_id: uuid.UUID) -> bytes:
    """One tour as a calendar file: attach it to a confirmation or reminder."""
    found = await _contexts(session, [Tour.id == tour_id, Tour.org_id == org_id], 1)
    if not found:
        raise NotFound("Tour not found.")
    return calendar(found)


async def feed_ics(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> bytes:
    """The agent's tours from 30 days back to 180 ahead; canceled ones stay in as CANCELLED."""
    user = await session.scalar(select(User).where(User.id == user_id, User.org_id == org_id))
    if user is None:
        raise NotFound("Calendar not found.")
    now = clock.now()
    contexts = await _contexts(
        session,
        [
            Tour.org_id == org_id,
            Tour.agent_id == user_id,
            Tour.starts_at >= now - FEED_PAST,
            Tour.starts_at < now + FEED_FUTURE,
            or_(Tour.status != TourStatus.canceled, Tour.canceled_at >= now - FEED_PAST),
        ],
        5000,
    )
    return calendar(contexts, name=f"Tours · {user.name}")
