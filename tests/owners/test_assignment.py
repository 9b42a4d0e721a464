"""Strategies: weighted round robin, away agents, renter's choice, returning renters, fixed, bad input."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FakeClock
from shared.models import Lead
from tests.conftest import OrgFixture
from tests.owners.helpers import events, lead_row, new_lead, person, property_with_team

SessionMaker = async_sessionmaker[AsyncSession]


async def test_a_team_weighted_1_2_1_splits_100_leads_25_50_25(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob, cara = [await person(client, org, name) for name in ("Amy", "Bob", "Cara")]
    property_id = await property_with_team(client, org, [(amy, 1), (bob, 2), (cara, 1)])
    owners = Counter()
    lead_ids = []
    for _ in range(100):
        lead_id = await new_lead(client, org, property_id)
        lead_ids.append(lead_id)
        owners[(await lead_row(sessionmaker, lead_id)).owner_id] += 1
        clock.advance(seconds=7)
    assert abs(owners[amy.id] - 25) <= 1 and abs(owners[bob.id] - 50) <= 1 and abs(owners[cara.id] - 25) <= 1
    # fair over time, not in bulk: every window of four leads holds one Amy, two Bobs and one Cara
    first_eight = [(await lead_row(sessionmaker, lead_id)).owner_id for lead_id in lead_ids[:8]]
    assert Counter(first_eight) == {amy.id: 2, bob.id: 4, cara.id: 2}
    [assigned] = await events(sessionmaker, lead_ids[1], "owner_assigned")
    assert assigned.data["strategy"] == "round_robin"
    assert assigned.data["reason"].startswith("round robin weight ")
    assert ": after " in assigned.data["reason"]
    assert assigned.data["assigned_at"]


async def test_an_away_agent_is_skipped_until_away_until_passes(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    property_id = await property_with_team(client, org, [(amy, 1), (bob, 1)])
    back = clock.now() + timedelta(hours=2)
    away = await client.patch(f"/v1/users/{bob.id}", json={"away_until": back.isoformat()}, headers=bob.headers)
    assert away.status_code == 200, away.text
    assert away.json()["availability"] == "away"
    users = {u["id"]: u for u in (await client.get("/v1/users", headers=org.headers)).json()}
    assert users[str(bob.id)]["availability"] == "away" and users[str(amy.id)]["availability"] == "available"

    during = [await new_lead(client, org, property_id) for _ in range(4)]
    assert {(await lead_row(sessionmaker, lead_id)).owner_id for lead_id in during} == {amy.id}
    [assigned] = await events(sessionmaker, during[-1], "owner_assigned")
    assert "Bob away until 16:00" in assigned.data["reason"]  # 20:00 UTC is 16:00 in New York

    clock.advance(hours=2, minutes=1)
    after = [await new_lead(client, org, property_id) for _ in range(4)]
    owners = Counter([(await lead_row(sessionmaker, lead_id)).owner_id for lead_id in after])
    assert owners == {amy.id: 2, bob.id: 2}  # no burst for Bob: no credit piled up while away


async def test_off_shift_agents_are_skipped_and_nobody_in_means_next_on_shift(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    # CLOCK_START is Tuesday 14:00 in New York: Amy works mornings only, Bob afternoons
    morning = {"tue": [{"start": "08:00", "end": "12:00"}], "wed": [{"start": "08:00", "end": "12:00"}]}
    afternoon = {"tue": [{"start": "13:00", "end": "17:00"}]}
    property_id = await property_with_team(
        client,
        org,
        [
            {"user_id": str(amy.id), "weight": 1, "working_hours": morning},
            {"user_id": str(bob.id), "weight": 1, "working_hours": afternoon},
        ],
    )
    lead_id = await new_lead(client, org, property_id)
    assert (await lead_row(sessionmaker, lead_id)).owner_id == bob.id
    [assigned] = await events(sessionmaker, lead_id, "owner_assigned")
    assert "Amy off shift" in assigned.data["reason"]

    clock.advance(hours=5)  # 19:00 local: nobody in; Amy is next on shift Wednesday 08:00
    late = await new_lead(client, org, property_id)
    assert (await lead_row(sessionmaker, late)).owner_id == amy.id
    [assigned] = await events(sessionmaker, late, "owner_assigned")
    assert "nobody in now; Amy is next on shift at Wed 03 Jun 08:00" in assigned.data["reason"]


async def test_the_renters_chosen_agent_is_honoured(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy Adams"), await person(client, org, "Bob Brown")
    property_id = await property_with_team(client, org, [(amy, 1), (bob, 1)], strategy="renter_choice")
    for hint in (bob.email.upper(), "Bob Brown", "bob"):
        lead_id = await new_lead(client, org, property_id, agent_hint=hint)
        lead = await lead_row(sessionmaker, lead_id)
        assert lead.owner_id == bob.id, hint
        [assigned] = await events(sessionmaker, lead_id, "owner_assigned")
        assert (assigned.data["strategy"], assigned.data["reason"]) == ("renter_choice", "renter chose Bob Brown")
    unknown = await new_lead(client, org, property_id, agent_hint="Zed")
    [assigned] = await events(sessionmaker, unknown, "owner_assigned")
    assert assigned.data["strategy"] == "round_robin"
    assert assigned.data["reason"].startswith("renter asked for 'Zed': no such active agent; then round robin")


async def test_a_returning_renter_goes_back_to_the_previous_owner(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    property_id = await property_with_team(client, org, [(amy, 1), (bob, 1)])
    first = await new_lead(client, org, property_id, email="back.again@example.org")
    owner = (await lead_row(sessionmaker, first)).owner_id
    async with sessionmaker() as session, session.begin():  # lost long ago: the renter's return is a new lead
        closed = clock.now() - timedelta(days=400)
        await session.execute(update(Lead).where(Lead.id == first).values(status="lost", closed_at=closed))
    for _ in range(3):  # move the round robin along so a plain pick would differ at least once
        await new_lead(client, org, property_id)
    again = await new_lead(client, org, property_id, email="back.again@example.org")
    assert again != first
    assert (await lead_row(sessionmaker, again)).owner_id == owner
    assigned, *rest = await events(sessionmaker, again, "owner_assigned")
    print([(e.data["strategy"], e.data["reason"]) for e in [assigned, *rest]])
    assert assigned.data["strategy"] == "returning_renter"


async def test_fixed_and_pool_strategies_and_the_organization_default(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    fixed = await property_with_team(client, org, [(amy, 1), (bob, 1)], strategy="fixed", fixed_user_id=str(bob.id))
    for _ in range(3):
        assert (await lead_row(sessionmaker, await new_lead(client, org, fixed))).owner_id == bob.id
    default = await client.put("/v1/assignment/default", json={"strategy": "pool"}, headers=org.headers)
    assert default.status_code == 200 and default.json()["source"] == "organization default"
    plain = await property_with_team(client, org, [(amy, 1)])
    pooled = await new_lead(client, org, plain)
    lead = await lead_row(sessionmaker, pooled)
    assert lead.owner_id is None and lead.pooled_at is not None
    [event] = await events(sessionmaker, pooled, "lead_pooled")
    assert event.data["reason"] == "pool: waiting for an agent to claim it"
    shown = (await client.get(f"/v1/properties/{plain}/assignment", headers=org.headers)).json()
    assert (shown["strategy"], shown["source"]) == ("pool", "organization default")


async def test_bad_team_and_assignment_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    property_id = await property_with_team(client, org, [(amy, 1)])
    url = f"/v1/properties/{property_id}/team"

    async def put(members: list[dict[str, object]]) -> httpx.Response:
        return await client.put(url, json={"members": members}, headers=org.headers)

    unknown = await put([{"user_id": str(uuid.uuid4())}])
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.members[0].user_id"
    heavy = await put([{"user_id": str(amy.id), "weight": 11}])
    assert heavy.status_code == 422 and "weight" in heavy.json()["errors"][0]["field"]
    overlap = {"mon": [{"start": "09:00", "end": "13:00"}, {"start": "12:00", "end": "17:00"}]}
    hours = await put([{"user_id": str(amy.id), "working_hours": overlap}])
    assert hours.status_code == 422 and "working_hours" in hours.json()["errors"][0]["field"]
    twice = await put([{"user_id": str(amy.id)}, {"user_id": str(amy.id)}])
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "body.members[1].user_id"
    not_on_team = await client.put(
        f"/v1/properties/{property_id}/assignment",
        json={"strategy": "fixed", "fixed_user_id": str(bob.id)},
        headers=org.headers,
    )
    assert not_on_team.status_code == 422
    assert not_on_team.json()["errors"][0] == {"field": "body.fixed_user_id", "message": "not on the property's team"}
    missing = await client.put(
        f"/v1/properties/{property_id}/assignment", json={"strategy": "fixed"}, headers=org.headers
    )
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.fixed_user_id"
    agent = await client.put(url, json={"members": []}, headers=amy.headers)
    assert agent.status_code == 403
