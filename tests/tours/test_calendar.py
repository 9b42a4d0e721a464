"""Calendars: a per-tour .ics and an agent's feed behind a signed URL, both parsed with `icalendar`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import icalendar
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FakeClock
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads
from tests.tours.helpers import add_agent, every_day, make_property

SessionMaker = async_sessionmaker[AsyncSession]


def _events(body: bytes) -> list[icalendar.Event]:
    cal = icalendar.Calendar.from_ical(body)
    return [component for component in cal.walk("VEVENT")]


async def test_the_feed_and_the_tour_ics_parse_with_icalendar(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    property_id = await make_property(client, org, "America/Chicago")
    agent = await add_agent(sessionmaker, org, property_id, every_day("09:00", "17:00"), name="Casey Agent")
    leads = await insert_leads(
        sessionmaker, org.org_id, 2, start=clock.now() - timedelta(days=1), property_id=uuid.UUID(property_id)
    )
    first = (
        await client.post(
            f"/v1/leads/{leads[0]}/tours",
            json={"starts_at": "2026-06-03T10:00:00", "agent_id": str(agent)},
            headers=org.headers,
        )
    ).json()
    second = (
        await client.post(
            f"/v1/leads/{leads[1]}/tours",
            json={"starts_at": "2026-06-04T11:00:00", "agent_id": str(agent), "tour_type": "virtual"},
            headers=org.headers,
        )
    ).json()
    await client.post(f"/v1/tours/{second['id']}/cancel", json={}, headers=org.headers)

    one = await client.get(f"/v1/tours/{first['id']}.ics", headers=org.headers)
    assert one.status_code == 200
    assert one.headers["content-type"].startswith("text/calendar")
    [event] = _events(one.content)
    assert event.decoded("dtstart") == datetime(2026, 6, 3, 15, 0, tzinfo=UTC)
    assert event.decoded("dtend") == datetime(2026, 6, 3, 15, 30, tzinfo=UTC)
    assert str(event["uid"]) == f"tour-{first['id']}@guestcard"
    assert "Renter0 Test" in str(event["summary"]) and "Maple Court" in str(event["summary"])
    assert "@" not in str(event["description"])  # no email or phone in calendars
    assert (await client.get(f"/v1/tours/{first['id']}.ics", headers=other_org.headers)).status_code == 404

    link = await client.get(f"/v1/users/{agent}/calendar-link", headers=org.headers)
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    assert url.startswith(f"https://guestcard.test/v1/users/{agent}/calendar.ics?token=")
    feed = await client.get(url.removeprefix("https://guestcard.test"))  # no API key: the token is the credential
    assert feed.status_code == 200, feed.text
    events = {str(e["uid"]): e for e in _events(feed.content)}
    assert set(events) == {f"tour-{first['id']}@guestcard", f"tour-{second['id']}@guestcard"}
    assert str(events[f"tour-{second['id']}@guestcard"]["status"]) == "CANCELLED"
    assert str(events[f"tour-{first['id']}@guestcard"]["status"]) == "CONFIRMED"
    # a rescheduled tour keeps its UID and raises its SEQUENCE, so subscribed calendars move it
    await client.post(
        f"/v1/tours/{first['id']}/reschedule", json={"starts_at": "2026-06-03T13:00:00"}, headers=org.headers
    )
    moved = {str(e["uid"]): e for e in _events((await client.get(url.removeprefix("https://guestcard.test"))).content)}
    assert moved[f"tour-{first['id']}@guestcard"].decoded("dtstart") == datetime(2026, 6, 3, 18, 0, tzinfo=UTC)
    assert int(moved[f"tour-{first['id']}@guestcard"]["sequence"]) == 1

    token = link.json()["token"]
    forged = await client.get(f"/v1/users/{agent}/calendar.ics?token={token[:-2]}xx")
    assert forged.status_code == 404
    someone_else = await client.get(f"/v1/users/{uuid.uuid4()}/calendar.ics?token={token}")
    assert someone_else.status_code == 404
    assert (await client.get(f"/v1/users/{agent}/calendar-link", headers=other_org.headers)).status_code == 404
