"""Booking: the database refuses double booking, naive times follow one rule, closed leads can't book,
history is kept, and slots follow working hours across a DST change."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FakeClock
from shared.models import Tour
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads
from tests.tours.helpers import add_agent, every_day, make_property

SessionMaker = async_sessionmaker[AsyncSession]


async def _timeline(client: httpx.AsyncClient, org: OrgFixture, lead_id: object) -> list[dict[str, object]]:
    response = await client.get(f"/v1/leads/{lead_id}/timeline", headers=org.headers)
    return list(response.json()["items"])


async def test_twenty_concurrent_bookings_of_one_slot_make_one_tour(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    property_id = await make_property(client, org, "America/Chicago")
    agent = await add_agent(sessionmaker, org, property_id, every_day("09:00", "17:00"))
    leads = await insert_leads(
        sessionmaker, org.org_id, 20, start=clock.now() - timedelta(days=1), property_id=uuid.UUID(property_id)
    )
    body = {"starts_at": "2026-06-03T10:00:00-05:00", "agent_id": str(agent)}

    async def book(lead_id: uuid.UUID) -> httpx.Response:
        return await client.post(f"/v1/leads/{lead_id}/tours", json=body, headers=org.headers)

    responses = await asyncio.gather(*(book(lead_id) for lead_id in leads))
    codes = sorted(response.status_code for response in responses)
    assert codes == [201] + [409] * 19, [r.text for r in responses if r.status_code not in (201, 409)]
    winner = next(r for r in responses if r.status_code == 201).json()
    refused = next(r for r in responses if r.status_code == 409).json()
    assert refused["clash"]["tour_id"] == winner["id"]
    assert refused["errors"][0]["field"] == "body.starts_at"
    nearest = [slot["starts_at_local"] for slot in refused["nearest_slots"]]
    # 10:00 holds the agent until 10:45 (30 min + 15 buffer), so 09:30 and 10:30 are taken too
    assert nearest == ["2026-06-03T09:00:00-05:00", "2026-06-03T11:00:00-05:00", "2026-06-03T11:30:00-05:00"]
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Tour).where(Tour.org_id == org.org_id, Tour.status == "scheduled")
        )
    assert count == 1


async def test_a_naive_time_is_read_in_the_property_timezone(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    property_id = await make_property(client, org, "America/Los_Angeles")
    agent = await add_agent(sessionmaker, org, property_id, every_day("09:00", "17:00"))
    [lead_id] = await insert_leads(
        sessionmaker, org.org_id, start=clock.now() - timedelta(days=1), property_id=uuid.UUID(property_id)
    )
    booked = await client.post(
        f"/v1/leads/{lead_id}/tours",
        json={"starts_at": "2026-06-04T10:00:00", "agent_id": str(agent)},
        headers=org.headers,
    )
    assert booked.status_code == 201, booked.text
    tour = booked.json()
    assert datetime.fromisoformat(tour["starts_at"]) == datetime(2026, 6, 4, 17, 0, tzinfo=UTC)  # PDT = UTC-7
    assert tour["starts_at_local"] == "2026-06-04T10:00:00-07:00"
    assert tour["timezone"] == "America/Los_Angeles"
    # a wall-clock time skipped by the spring-forward jump does not exist: 422 naming the field
    skipped = await client.post(
        f"/v1/leads/{lead_id}/tours",
        json={"starts_at": "2027-03-14T02:30:00", "agent_id": str(agent)},
        headers=org.headers,
    )
    assert skipped.status_code == 422
    assert skipped.json()["errors"][0]["field"] == "body.starts_at"
    # a slot outside the agent's working hours: 422 naming the field
    late = await client.post(
        f"/v1/leads/{lead_id}/tours",
        json={"starts_at": "2026-06-04T16:45:00", "agent_id": str(agent)},
        headers=org.headers,
    )
    assert late.status_code == 422
    assert late.json()["errors"] == [{"field": "body.starts_at", "message": "outside the agent's working hours"}]
    # a lead without a property has no timezone to read a naive time in
    [homeless] = await insert_leads(sessionmaker, org.org_id, start=clock.now() - timedelta(days=1))
    refused = await client.post(
        f"/v1/leads/{homeless}/tours", json={"starts_at": "2026-06-04T10:00:00"}, headers=org.headers
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body.starts_at"


async def test_slots_follow_working_hours_across_a_dst_change(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 10, 29, 12, 0, tzinfo=UTC))
    property_id = await make_property(client, org, "America/New_York")
    agent = await add_agent(sessionmaker, org, property_id, every_day("09:00", "11:00"))
    settings = {"length_minutes": 30, "buffer_minutes": 15, "interval_minutes": 30, "min_notice_minutes": 60}
    put = await client.put(f"/v1/properties/{property_id}/tour-settings", json=settings, headers=org.headers)
    assert put.status_code == 200, put.text

    async def starts(day: str) -> list[str]:
        response = await client.get(f"/v1/properties/{property_id}/tour-slots?date={day}", headers=org.headers)
        assert response.status_code == 200, response.text
        return [slot["starts_at"] for slot in response.json()["slots"]]

    # Saturday before the change (EDT, UTC-4) and Sunday of the change (EST, UTC-5): 09:00 local both days
    before = await starts("2026-10-31")
    after = await starts("2026-11-01")
    assert before == [f"2026-10-31T{h}Z" for h in ("13:00:00", "13:30:00", "14:00:00", "14:30:00")]
    assert after == [f"2026-11-01T{h}Z" for h in ("14:00:00", "14:30:00", "15:00:00", "15:30:00")]
    # a booked 09:00 tour (30 min + 15 buffer) takes 09:00 and 09:30 away, not 10:00
    [lead_id] = await insert_leads(
        sessionmaker, org.org_id, start=clock.now() - timedelta(days=1), property_id=uuid.UUID(property_id)
    )
    booked = await client.post(f"/v1/leads/{lead_id}/tours", json={"slot": "2026-11-01T09:00:00"}, headers=org.headers)
    assert booked.status_code == 201, booked.text
    assert booked.json()["agent_id"] == str(agent)
    assert await starts("2026-11-01") == ["2026-11-01T15:00:00Z", "2026-11-01T15:30:00Z"]
    # a blackout removes what it covers; self-guided slots use the property's default hours (09:00-18:00)
    blackout = await client.post(
        f"/v1/properties/{property_id}/tour-blackouts",
        json={"starts_at": "2026-10-31T09:00:00", "ends_at": "2026-10-31T10:00:00", "reason": "inspection"},
        headers=org.headers,
    )
    assert blackout.status_code == 201, blackout.text
    assert await starts("2026-10-31") == ["2026-10-31T14:00:00Z", "2026-10-31T14:30:00Z"]
    guided = await client.get(
        f"/v1/properties/{property_id}/tour-slots?date=2026-11-01&type=self_guided", headers=org.headers
    )
    assert len(guided.json()["slots"]) == 18  # 09:00 … 17:30 every 30 minutes
    assert guided.json()["slots"][0]["agent_ids"] == []


async def test_closed_leads_cannot_book_and_tours_complete_only_after_they_start(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    start = clock.now() - timedelta(days=3)
    [lost] = await insert_leads(sessionmaker, org.org_id, start=start, status="lost", lost_reason="price")
    refused = await client.post(
        f"/v1/leads/{lost}/tours",
        json={"starts_at": (clock.now() + timedelta(days=1)).isoformat()},
        headers=org.headers,
    )
    assert refused.status_code == 409
    assert refused.json()["lead_status"] == "lost"


async def test_reschedule_and_cancel_keep_history(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    property_id = await make_property(client, org, "America/Denver")
    agent = await add_agent(sessionmaker, org, property_id, every_day("09:00", "17:00"))
    [lead_id] = await insert_leads(
        sessionmaker, org.org_id, start=clock.now() - timedelta(days=1), property_id=uuid.UUID(property_id)
    )
    tour = (
        await client.post(f"/v1/leads/{lead_id}/tours", json={"starts_at": "2026-06-05T10:00:00"}, headers=org.headers)
    ).json()
    moved = await client.post(
        f"/v1/tours/{tour['id']}/reschedule",
        json={"starts_at": "2026-06-05T14:00:00", "reason": "renter asked"},
        headers=org.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["starts_at_local"] == "2026-06-05T14:00:00-06:00"
    assert moved.json()["id"] == tour["id"]
    canceled = await client.post(f"/v1/tours/{tour['id']}/cancel", json={"reason": "sick"}, headers=org.headers)
    assert (canceled.json()["status"], canceled.json()["cancel_reason"]) == ("canceled", "sick")
    detail = (await client.get(f"/v1/tours/{tour['id']}", headers=org.headers)).json()
    assert [change["kind"] for change in detail["history"]] == ["booked", "rescheduled", "canceled"]
    assert detail["history"][1]["from_starts_at"].startswith("2026-06-05T16:00:00")
    events = {e["type"]: e["data"] for e in await _timeline(client, org, lead_id) if e["type"].startswith("tour_")}
    assert set(events) >= {"tour_booked", "tour_rescheduled", "tour_canceled"}
    for data in events.values():
        assert data["tour_id"] == tour["id"] and data["agent_id"] == str(agent) and data["starts_at"]
    assert events["tour_rescheduled"]["starts_at"] == "2026-06-05T20:00:00+00:00"
    # the freed 10:00 slot books again for someone else
    [other] = await insert_leads(
        sessionmaker, org.org_id, start=clock.now() - timedelta(days=1), property_id=uuid.UUID(property_id)
    )
    again = await client.post(f"/v1/leads/{other}/tours", json={"slot": "2026-06-05T14:00:00"}, headers=org.headers)
    assert again.status_code == 201, again.text


@pytest.mark.parametrize("path", ["/tour-slots?date=2026-06-03", "/tour-settings", "/tour-blackouts"])
async def test_another_organizations_property_is_404(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, path: str
) -> None:
    property_id = await make_property(client, org, "America/New_York")
    response = await client.get(f"/v1/properties/{property_id}{path}", headers=other_org.headers)
    assert response.status_code == 404


def test_dates_used_above_are_what_they_claim() -> None:
    assert date(2026, 11, 1).weekday() == 6  # US DST ends on the first Sunday of November 2026


async def test_patch_reschedules_into_a_clash_get_409_and_self_guided_tours_exclude_each_other(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    property_id = await make_property(client, org, "America/New_York")
    agent = await add_agent(sessionmaker, org, property_id, every_day("09:00", "17:00"))
    stranger = await add_agent(sessionmaker, org, await make_property(client, org, "UTC", name="Other"), None)
    leads = await insert_leads(
        sessionmaker, org.org_id, 4, start=clock.now() - timedelta(days=1), property_id=uuid.UUID(property_id)
    )
    first = await client.post(f"/v1/leads/{leads[0]}/tours", json={"slot": "2026-06-03T10:00:00"}, headers=org.headers)
    second = await client.post(f"/v1/leads/{leads[1]}/tours", json={"slot": "2026-06-03T12:00:00"}, headers=org.headers)
    assert (first.json()["agent_id"], second.json()["agent_id"]) == (str(agent), str(agent))
    clash = await client.patch(
        f"/v1/tours/{second.json()['id']}", json={"starts_at": "2026-06-03T10:15:00"}, headers=org.headers
    )
    assert clash.status_code == 409
    assert clash.json()["clash"]["tour_id"] == first.json()["id"]
    moved = await client.patch(
        f"/v1/tours/{second.json()['id']}", json={"starts_at": "2026-06-03T11:00:00"}, headers=org.headers
    )
    assert moved.status_code == 200, moved.text
    clock.set(datetime(2026, 6, 3, 16, 0, tzinfo=UTC))
    whole = {**moved.json(), "status": "completed"}  # the whole object sent back: only the status changes
    sent = {k: whole[k] for k in ("status", "starts_at", "tour_type", "agent_id", "notes")}
    done = await client.patch(f"/v1/tours/{second.json()['id']}", json=sent, headers=org.headers)
    assert done.status_code == 200, done.text
    clock.set(datetime(2026, 6, 2, 18, 0, tzinfo=UTC))
    not_on_team = await client.post(
        f"/v1/leads/{leads[2]}/tours",
        json={"starts_at": "2026-06-03T15:00:00", "agent_id": str(stranger)},
        headers=org.headers,
    )
    assert (not_on_team.status_code, not_on_team.json()["errors"][0]["field"]) == (422, "body.agent_id")
    guided = {"slot": "2026-06-03T15:00:00", "tour_type": "self_guided"}
    one = await client.post(f"/v1/leads/{leads[2]}/tours", json=guided, headers=org.headers)
    assert one.status_code == 201, one.text
    assert one.json()["agent_id"] is None
    two = await client.post(f"/v1/leads/{leads[3]}/tours", json=guided, headers=org.headers)
    assert two.status_code == 409
    assert two.json()["nearest_slots"][0]["agent_ids"] == []


async def test_the_database_itself_refuses_overlapping_tours_of_one_agent(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    property_id = await make_property(client, org, "America/New_York")
    agent = await add_agent(sessionmaker, org, property_id, None)
    [lead_id] = await insert_leads(sessionmaker, org.org_id, start=clock.now(), property_id=uuid.UUID(property_id))
    start = datetime(2026, 6, 3, 14, 0, tzinfo=UTC)

    def row(offset_minutes: int, status: str = "scheduled") -> dict[str, object]:
        at = start + timedelta(minutes=offset_minutes)
        return {
            "id": uuid.uuid4(), "org_id": org.org_id, "lead_id": lead_id, "property_id": uuid.UUID(property_id),
            "agent_id": agent, "starts_at": at, "ends_at": at + timedelta(minutes=30),
            "busy_until": at + timedelta(minutes=45), "status": status, "tour_type": "in_person",
        }  # fmt: skip

    async with sessionmaker() as session, session.begin():
        await session.execute(insert(Tour).values(row(0)))
        await session.execute(insert(Tour).values(row(20, "canceled")))  # canceled tours don't hold the agent
        await session.execute(insert(Tour).values(row(45)))  # starts when the first one's buffer ends
    with pytest.raises(IntegrityError, match="ex_tours_agent_busy"):
        async with sessionmaker() as session, session.begin():
            await session.execute(insert(Tour).values(row(40)))
