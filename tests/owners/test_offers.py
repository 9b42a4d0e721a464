"""Offers (accept, decline, timeout to the next agent, everyone declined), the one-click link, and claims."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.owners.jobs import expire_offers
from shared.clock import FakeClock
from shared.config import Settings
from shared.models import LeadEvent, LeadOffer
from tests.conftest import OrgFixture
from tests.owners.helpers import Person, events, job_ctx, lead_row, new_lead, person, property_with_team

SessionMaker = async_sessionmaker[AsyncSession]


async def _offers(client: httpx.AsyncClient, who: Person) -> list[dict[str, object]]:
    response = await client.get("/v1/offers", params={"mine": "true"}, headers=who.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_an_offer_times_out_to_the_next_agent_and_a_late_accept_gets_409(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    property_id = await property_with_team(
        client, org, [(amy, 1), (bob, 1)], strategy="round_robin", offers_enabled=True
    )
    lead_id = await new_lead(client, org, property_id)
    assert (await lead_row(sessionmaker, lead_id)).owner_id is None  # offered, not assigned
    [first] = await _offers(client, amy)
    assert first["lead_id"] == str(lead_id) and await _offers(client, bob) == []

    clock.advance(minutes=4)
    assert await expire_offers(job_ctx(settings, sessionmaker)) == 0  # not due yet (default 5 minutes)
    clock.advance(minutes=2)
    assert await expire_offers(job_ctx(settings, sessionmaker)) == 1
    assert await expire_offers(job_ctx(settings, sessionmaker)) == 0  # idempotent: nothing left due
    [second] = await _offers(client, bob)

    late = await client.post(f"/v1/offers/{first['id']}/accept", headers=amy.headers)
    assert late.status_code == 409
    assert late.json()["detail"] == "This offer is expired: the lead is offered to Bob now."
    accepted = await client.post(f"/v1/offers/{second['id']}/accept", headers=bob.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and accepted.json()["answer_seconds"] == 0
    assert (await lead_row(sessionmaker, lead_id)).owner_id == bob.id
    again = await client.post(f"/v1/offers/{first['id']}/accept", headers=amy.headers)
    assert again.status_code == 409
    assert (again.json()["detail"], again.json()["owner_id"]) == ("This lead is taken: Bob has it.", str(bob.id))

    made = await events(sessionmaker, lead_id, "offer_made")
    assert [e.data["user_id"] for e in sorted(made, key=lambda e: e.data["attempt"])] == [str(amy.id), str(bob.id)]
    [expired] = await events(sessionmaker, lead_id, "offer_expired")
    assert expired.data["reason"] == "Amy did not answer within 5 minutes" and expired.data["seconds"] == 360
    second_made = next(e for e in made if e.data["attempt"] == 2)
    assert second_made.data["reason"].startswith("Amy did not answer within 5 minutes; next: round robin weight 1")
    [took] = await events(sessionmaker, lead_id, "offer_accepted")
    assert took.data["offered_at"] and took.data["accepted_at"] and took.data["seconds"] == 0
    [assigned] = await events(sessionmaker, lead_id, "owner_assigned")
    assert (assigned.data["owner_id"], assigned.data["reason"]) == (str(bob.id), "Bob accepted the offer")
    # an agent never reaches another agent's offer
    assert (await client.post(f"/v1/offers/{second['id']}/decline", headers=amy.headers)).status_code == 404


async def test_everyone_declining_pools_the_lead_and_tells_the_manager(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    manager = await person(client, org, "Mona", role="manager")
    property_id = await property_with_team(
        client, org, [(amy, 1), (bob, 1)], strategy="round_robin", offers_enabled=True, offer_timeout_minutes=10
    )
    lead_id = await new_lead(client, org, property_id)
    for agent in (amy, bob):
        [offer] = await _offers(client, agent)
        declined = await client.post(
            f"/v1/offers/{offer['id']}/decline", json={"reason": "full"}, headers=agent.headers
        )
        assert declined.status_code == 200, declined.text
        clock.advance(minutes=1)
    lead = await lead_row(sessionmaker, lead_id)
    assert lead.owner_id is None and lead.pooled_at is not None
    [pooled] = await events(sessionmaker, lead_id, "lead_pooled")
    assert pooled.data["notified"] == [str(manager.id)]
    assert "everyone on the team declined or let it time out: to the pool" in pooled.data["reason"]
    declines = await events(sessionmaker, lead_id, "offer_declined")
    assert [e.data["reason"] for e in declines] == ["Amy declined (full)", "Bob declined (full)"]
    # the pool is claimable by the team: first claim wins
    claimed = await client.post(f"/v1/leads/{lead_id}/claim", headers=bob.headers)
    assert claimed.status_code == 200, claimed.text
    taken = await client.post(f"/v1/leads/{lead_id}/claim", headers=amy.headers)
    assert taken.status_code == 409 and taken.json()["detail"] == "This lead is already owned: Bob has it."


async def test_the_one_click_link_works_once_and_only_by_post(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    amy = await person(client, org, "Amy")
    property_id = await property_with_team(client, org, [(amy, 1)], strategy="round_robin", offers_enabled=True)
    lead_id = await new_lead(client, org, property_id, first_name="Rosa")
    [offer] = await _offers(client, amy)
    link = str(offer["link"])
    assert link.startswith("https://guestcard.test/o/")
    path = link.removeprefix("https://guestcard.test")

    for _ in range(2):  # a mail scanner's prefetch, then the agent opening it: nothing happens
        page = await client.get(path)
        assert page.status_code == 200 and "ACCEPT" in page.text and "DECLINE" in page.text
        assert 'method="post"' in page.text and "Rosa" in page.text
    assert (await lead_row(sessionmaker, lead_id)).owner_id is None

    accepted = await client.post(path, params={"action": "accept"})
    assert accepted.status_code == 200 and "The lead is yours" in accepted.text
    assert (await lead_row(sessionmaker, lead_id)).owner_id == amy.id
    again = await client.post(path, params={"action": "accept"})
    assert again.status_code == 409 and "Amy has it" in again.text
    assert "ACCEPT" not in (await client.get(path)).text  # the page now says the offer is closed

    forged = re.sub(r"\.[^.]+$", ".AAAA", path)
    assert (await client.post(forged, params={"action": "accept"})).status_code == 404
    assert (await client.get("/o/not-a-token")).status_code == 404
    async with sessionmaker() as session:
        states = Counter(await session.scalars(select(LeadOffer.status).where(LeadOffer.lead_id == lead_id)))
    assert states == {"accepted": 1}


async def test_twenty_concurrent_claims_on_one_pool_lead_leave_exactly_one_owner(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agents = [await person(client, org, f"Agent {n:02d}") for n in range(20)]
    property_id = await property_with_team(client, org, [(agent, 1) for agent in agents], strategy="pool")
    lead_id = await new_lead(client, org, property_id)
    assert (await lead_row(sessionmaker, lead_id)).owner_id is None

    responses = await asyncio.gather(
        *[client.post(f"/v1/leads/{lead_id}/claim", headers=agent.headers) for agent in agents]
    )
    codes = Counter(response.status_code for response in responses)
    assert codes == {200: 1, 409: 19}, [r.text for r in responses if r.status_code not in (200, 409)]
    winner = next(agent for agent, response in zip(agents, responses, strict=True) if response.status_code == 200)
    lead = await lead_row(sessionmaker, lead_id)
    assert lead.owner_id == winner.id and lead.pooled_at is None
    loser = next(response for response in responses if response.status_code == 409)
    assert loser.json()["owner_id"] == str(winner.id) and winner.name in loser.json()["detail"]
    async with sessionmaker() as session:
        claims = await session.scalar(
            select(func.count()).where(LeadEvent.lead_id == lead_id, LeadEvent.type == "lead_claimed")
        )
    assert claims == 1
    [claim] = await events(sessionmaker, lead_id, "lead_claimed")
    assert claim.data["reason"] == f"claimed from the pool by {winner.name}" and claim.data["claimed_at"]
    # a claim on a lead outside the agent's properties is a 404
    other_property = await property_with_team(client, org, [(agents[0], 1)], strategy="pool")
    elsewhere = await new_lead(client, org, other_property)
    assert (await client.post(f"/v1/leads/{elsewhere}/claim", headers=agents[1].headers)).status_code == 404
    _ = uuid
