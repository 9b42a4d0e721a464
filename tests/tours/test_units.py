"""Floor plans and units: bad input names the field, CSV import with a dry run, matching ranks as computed by
hand, and a unit becoming available reactivates exactly the matching aged leads, once each."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FakeClock
from shared.models import Lead, LeadEvent, LeadReactivation
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads
from tests.tours.helpers import make_property

SessionMaker = async_sessionmaker[AsyncSession]


async def _plan(client: httpx.AsyncClient, org: OrgFixture, property_id: str, **values: object) -> str:
    body = {"name": "Plan", "bedrooms": 1, **values}
    response = await client.post(f"/v1/properties/{property_id}/floor-plans", json=body, headers=org.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _unit(client: httpx.AsyncClient, org: OrgFixture, plan_id: str, **values: object) -> dict[str, object]:
    response = await client.post("/v1/units", json={"floor_plan_id": plan_id, **values}, headers=org.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_bad_input_names_the_field(client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture) -> None:
    property_id = await make_property(client, org, "America/New_York")
    plan_id = await _plan(client, org, property_id, rent_min=1200, rent_max=1400)
    negative = await client.post(
        "/v1/units", json={"floor_plan_id": plan_id, "number": "101", "rent": -5}, headers=org.headers
    )
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "body.rent"
    backwards = await client.post(
        f"/v1/properties/{property_id}/floor-plans",
        json={"name": "Odd", "bedrooms": 2, "rent_min": 2000, "rent_max": 1000},
        headers=org.headers,
    )
    assert (backwards.status_code, backwards.json()["errors"][0]["field"]) == (422, "body.rent_max")
    foreign = await client.post(
        f"/v1/properties/{property_id}/floor-plans", json={"name": "X", "bedrooms": 1}, headers=other_org.headers
    )
    assert foreign.status_code == 404
    assert foreign.headers["content-type"] == "application/problem+json"
    foreign_plan = await client.post(
        "/v1/units", json={"floor_plan_id": plan_id, "number": "1"}, headers=other_org.headers
    )
    assert (foreign_plan.status_code, foreign_plan.json()["errors"][0]["field"]) == (422, "body.floor_plan_id")
    assert (await client.get(f"/v1/floor-plans/{plan_id}", headers=other_org.headers)).status_code == 404
    listed = await client.get(f"/v1/properties/{property_id}/floor-plans", headers=org.headers)
    assert [plan["id"] for plan in listed.json()] == [plan_id]


async def test_csv_import_with_a_dry_run(client: httpx.AsyncClient, org: OrgFixture) -> None:
    property_id = await make_property(client, org, "America/New_York")
    await _plan(client, org, property_id, name="Aspen", bedrooms=1)
    csv = (
        "Unit Number,Floor Plan,Rent,Available On,Status\n"
        '101,Aspen,"$1,450",2026-07-01,available\n'
        "102,Aspen,1500,,on notice\n"
        "103,Birch,1600,,available\n"
        "104,Aspen,-3,,available\n"
    )
    url = f"/v1/units/import?property_id={property_id}"
    headers = {**org.headers, "content-type": "text/csv"}
    dry = await client.post(url + "&dry_run=true", content=csv, headers=headers)
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert (report["rows"], report["created"], report["failed"], report["dry_run"]) == (4, 2, 2, True)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "floor_plan"), (5, "rent")]
    assert (await client.get(f"/v1/units?property_id={property_id}", headers=org.headers)).json()["items"] == []
    real = (await client.post(url, content=csv, headers=headers)).json()
    assert (real["created"], real["updated"], real["failed"]) == (2, 0, 2)
    units = (await client.get(f"/v1/units?property_id={property_id}", headers=org.headers)).json()["items"]
    assert [(u["number"], u["rent"], u["status"]) for u in units] == [
        ("101", 1450, "available"),
        ("102", 1500, "on_notice"),
    ]
    again = (await client.post(url, content="number,rent\n101,1425\n", headers=headers)).json()
    assert (again["created"], again["updated"]) == (0, 1)


async def test_matching_ranks_units_as_computed_by_hand(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    # today in New York is 2026-06-02; the renter wants 2 bedrooms, up to $2,000, moving in 2026-07-01, with a dog
    property_id = await make_property(client, org, "America/New_York")
    two = await _plan(client, org, property_id, name="Two", bedrooms=2, rent_min=1900, pet_policy="allowed")
    two_cats = await _plan(client, org, property_id, name="TwoCats", bedrooms=2, rent_min=1800, pet_policy="cats_only")
    one = await _plan(client, org, property_id, name="One", bedrooms=1, rent_min=1500, pet_policy="not_allowed")
    await _unit(client, org, two, number="A", rent=1950, available_on="2026-06-20")  # 100
    await _unit(client, org, two, number="B", rent=2150, available_on="2026-07-11")  # 100 - 15 - 10 = 75
    await _unit(client, org, two_cats, number="C", available_on="2026-06-01")  # 100 - 10 = 90 (rent 1800)
    await _unit(client, org, one, number="D", rent=1400)  # 100 - 30 - 40 = 30
    await _unit(client, org, two, number="E", rent=1900, status="leased")  # not leasable: left out
    await _unit(client, org, two, number="F", rent=1900, status="on_notice", available_on="2026-07-01")  # 100
    [lead_id] = await insert_leads(
        sessionmaker,
        org.org_id,
        start=clock.now() - timedelta(days=1),
        property_id=uuid.UUID(property_id),
        bedrooms=2,
        budget_max=2000,
        move_in_date=date(2026, 7, 1),
        pets=True,
    )
    other_property = await make_property(client, org, "America/New_York", name="Elsewhere")
    await _unit(client, org, await _plan(client, org, other_property, bedrooms=2), number="Z", rent=1000)
    result = (await client.get(f"/v1/leads/{lead_id}/matching-units", headers=org.headers)).json()
    assert result["scope"] == "property"
    ranked = [(m["unit"]["number"], m["score"], m["matched"]) for m in result["items"]]
    # ties: cheaper first (F $1,900 before A $1,950)
    assert ranked == [("F", 100, True), ("A", 100, True), ("C", 90, True), ("B", 75, False), ("D", 30, False)]
    by_number = {m["unit"]["number"]: m for m in result["items"]}
    assert by_number["B"]["summary"] == "$150 over budget; available 10 days after move-in"
    assert by_number["D"]["summary"] == "1 bedroom, wanted 2; no pets allowed"
    assert by_number["C"]["summary"] == "2 bedrooms as wanted; $200 under budget; available by move-in; pets: cats only"
    wide = (await client.get(f"/v1/leads/{lead_id}/matching-units?portfolio=true", headers=org.headers)).json()
    assert wide["scope"] == "portfolio"
    assert wide["items"][0]["unit"]["number"] == "Z"
    # the opt-in is saved on the lead
    opted = await client.patch(
        f"/v1/leads/{lead_id}/unit-criteria", json={"match_portfolio": True}, headers=org.headers
    )
    assert opted.json()["scope"] == "portfolio"
    assert opted.json()["criteria"]["match_portfolio"] is True


async def test_a_unit_becoming_available_reactivates_exactly_the_matching_aged_leads_once(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    property_id = await make_property(client, org, "America/New_York")
    prop = uuid.UUID(property_id)
    plan = await _plan(client, org, property_id, name="Two", bedrooms=2, rent_min=1800, pet_policy="not_allowed")
    old = clock.now() - timedelta(days=60)
    criteria = {"property_id": prop, "bedrooms": 2, "budget_max": 2000}

    async def lead(**values: object) -> uuid.UUID:
        [lead_id] = await insert_leads(sessionmaker, org.org_id, start=old, **{**criteria, **values})
        return lead_id

    nurture = await lead(status="nurture")
    lost_price = await lead(status="lost", lost_reason="price")
    lost_availability = await lead(status="lost", lost_reason="no_availability")
    untouched = await lead(status="contacted", last_touch_at=clock.now() - timedelta(days=45))
    no_criteria = await lead(status="nurture", bedrooms=None, budget_max=None)
    skip = [
        await lead(status="lost", lost_reason="rented_elsewhere"),  # not lost for price or availability
        await lead(status="contacted", last_touch_at=clock.now() - timedelta(days=3)),  # touched recently
        await lead(status="nurture", bedrooms=3),  # wrong size
        await lead(status="nurture", budget_max=1500),  # over budget
        await lead(status="nurture", pets=True),  # pets, and this plan allows none
        await lead(status="nurture", move_in_date=date(2026, 6, 10)),  # the unit is ready only on 2026-08-01
        await lead(status="leased"),
    ]
    elsewhere = await make_property(client, org, "America/New_York", name="Elsewhere")
    await lead(status="nurture", property_id=uuid.UUID(elsewhere))  # another property, no portfolio opt-in
    portfolio = await lead(status="nurture", property_id=uuid.UUID(elsewhere), match_portfolio=True)
    expected = {nurture, lost_price, lost_availability, untouched, no_criteria, portfolio}

    unit = await _unit(client, org, plan, number="204", rent=1950, status="on_notice", available_on="2026-08-01")
    assert unit["reactivated_lead_ids"] == []  # on notice is not available yet
    became = await client.patch(f"/v1/units/{unit['id']}", json={"status": "available"}, headers=org.headers)
    assert became.status_code == 200, became.text
    assert set(map(uuid.UUID, became.json()["reactivated_lead_ids"])) == expected
    # leased and available again: nobody twice
    await client.patch(f"/v1/units/{unit['id']}", json={"status": "leased"}, headers=org.headers)
    again = await client.patch(f"/v1/units/{unit['id']}", json={"status": "available"}, headers=org.headers)
    assert again.json()["reactivated_lead_ids"] == []

    async with sessionmaker() as session:
        leads = {row.id: row for row in (await session.scalars(select(Lead).where(Lead.org_id == org.org_id))).all()}
        events = (
            await session.scalars(
                select(LeadEvent).where(LeadEvent.org_id == org.org_id, LeadEvent.type == "reactivated")
            )
        ).all()
    assert sorted(str(e.lead_id) for e in events) == sorted(str(i) for i in expected)
    for lead_id in expected:
        assert leads[lead_id].next_action_type == "reactivation"
    for lead_id in skip:
        assert leads[lead_id].next_action_type != "reactivation"
    why = next(e for e in events if e.lead_id == lost_price).data
    assert why["unit_id"] == unit["id"] and why["reason"] == "lost_price"
    assert why["why"].startswith("Unit 204 (Two, $1,950) is available and matches: 2 bedrooms as wanted")
    assert why["why"].endswith("the lead was lost for price")

    # the database enforces "never twice for the same renter and unit"
    async with sessionmaker() as session:
        existing = await session.scalar(select(LeadReactivation).where(LeadReactivation.lead_id == nurture))
        assert existing is not None
    with pytest.raises(IntegrityError):
        async with sessionmaker() as session, session.begin():
            await session.execute(
                insert(LeadReactivation).values(
                    id=uuid.uuid4(),
                    org_id=org.org_id,
                    lead_id=nurture,
                    contact_id=existing.contact_id,
                    unit_id=existing.unit_id,
                    reason="nurture",
                    created_at=clock.now(),
                )
            )
    async with sessionmaker() as session:
        total = await session.scalar(
            select(func.count()).select_from(LeadReactivation).where(LeadReactivation.org_id == org.org_id)
        )
    assert total == len(expected)


async def test_adding_an_available_unit_reactivates_too(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    property_id = await make_property(client, org, "America/New_York")
    plan = await _plan(client, org, property_id, bedrooms=1, rent_min=1200)
    [lead_id] = await insert_leads(
        sessionmaker,
        org.org_id,
        start=clock.now() - timedelta(days=90),
        property_id=uuid.UUID(property_id),
        status="nurture",
        bedrooms=1,
    )
    unit = await _unit(client, org, plan, number="7")
    assert unit["reactivated_lead_ids"] == [str(lead_id)]


async def test_the_digest_selection_lists_units_that_became_available_and_match(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    from services.api.units.digest import newly_available_matches

    property_id = await make_property(client, org, "America/New_York")
    plan = await _plan(client, org, property_id, bedrooms=2, rent_min=1500)
    small = await _plan(client, org, property_id, name="Small", bedrooms=0, rent_min=900)
    await _unit(client, org, plan, number="old")  # available before the digest window
    clock.advance(days=1)
    since = clock.now()
    fresh = await _unit(client, org, plan, number="new", status="down")
    await client.patch(f"/v1/units/{fresh['id']}", json={"status": "available"}, headers=org.headers)
    await _unit(client, org, small, number="studio")  # new, but not what the renter wants
    [lead_id] = await insert_leads(
        sessionmaker, org.org_id, start=since, property_id=uuid.UUID(property_id), bedrooms=2, unit_digest_opt_in=True
    )
    clock.advance(hours=1)
    async with sessionmaker() as session:
        lead = await session.get_one(Lead, lead_id)
        found = await newly_available_matches(session, lead, since, clock.now())
    assert [match.unit.number for match in found] == ["new"]
