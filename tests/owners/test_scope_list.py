"""An agent's list walks its three sets (owned, collaborated on, its properties' pool) apart and merges them:
every page, filter, sort and cursor gives exactly the leads the one scope condition gives, in the same order,
on the fast path and on the route."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.leads import fast as fast_reads
from services.api.leads.queries import DEFAULT_PAGE, LeadFilters, filter_terms
from services.api.owners.scope import agent_scope_parts
from shared.clock import FakeClock
from shared.models import Lead, LeadCollaborator
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads
from tests.owners.helpers import Person, lead_row, new_lead, person, property_with_team

SessionMaker = async_sessionmaker[AsyncSession]


async def _pages(client: httpx.AsyncClient, amy: Person, params: dict[str, str], limit: str) -> list[str]:
    """Every lead of the list, page after page (limit "02" is read by the route, "2" by the fast path)."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/leads", params=query, headers=amy.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        found += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def _expected(
    sessionmaker: SessionMaker, org_id: uuid.UUID, amy: Person, sort: str, status: str | None
) -> list[str]:
    """The one-condition answer: every lead of the organization tested against the whole scope."""
    column = Lead.created_at
    order = (column.desc(), Lead.id.desc()) if sort.startswith("-") else (column.asc(), Lead.id.asc())
    query = select(Lead.id).where(Lead.org_id == org_id, or_(*agent_scope_parts(amy.id)))
    if status:
        query = query.where(Lead.status == status)
    async with sessionmaker() as session:
        return [str(lead_id) for lead_id in await session.scalars(query.order_by(*order))]


@pytest.mark.parametrize("limit", ["2", "02"])
async def test_an_agents_pages_are_the_scope_in_order_whatever_the_sets_overlap(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock, limit: str
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    mine = await property_with_team(client, org, [(amy, 1)])
    theirs = await property_with_team(client, org, [(bob, 1)])
    pool = await property_with_team(client, org, [(amy, 1), (bob, 1)], strategy="pool")
    amys_pool = await property_with_team(client, org, [(amy, 1)], strategy="pool")  # a pool read property by property
    leads: dict[str, list[uuid.UUID]] = {"owned": [], "bobs": [], "pool": [], "amys_pool": []}
    for _ in range(3):  # interleaved in time, so each page mixes the sets
        for name, property_id in (("owned", mine), ("bobs", theirs), ("pool", pool), ("amys_pool", amys_pool)):
            leads[name].append(await new_lead(client, org, property_id))
            clock.advance(timedelta(minutes=7))
    assert {(await lead_row(sessionmaker, lead_id)).owner_id for lead_id in leads["owned"]} == {amy.id}
    assert {(await lead_row(sessionmaker, lead_id)).owner_id for lead_id in leads["pool"] + leads["amys_pool"]} == {
        None
    }
    # collaborations: on one of Bob's leads, on one of Amy's own (owned and collaborated: listed once), and on a
    # pooled one (pool and collaborated: listed once)
    for lead_id, owner in ((leads["bobs"][1], bob), (leads["owned"][0], amy), (leads["pool"][2], org)):
        headers = owner.headers if isinstance(owner, Person) else org.headers
        shared = await client.put(f"/v1/leads/{lead_id}/collaborators", json={"user_ids": [str(amy.id)]},
                                  headers=headers)  # fmt: skip
        assert shared.status_code == 200, shared.text
    lost = await client.post(f"/v1/leads/{leads['owned'][1]}/status", json={"status": "lost", "lost_reason": "spam"},
                             headers=amy.headers)  # fmt: skip
    assert lost.status_code == 200, lost.text

    for sort in ("-created_at", "created_at"):
        for status in (None, "new", "lost"):
            params = {"sort": sort, **({"status": status} if status else {})}
            expected = await _expected(sessionmaker, org.org_id, amy, sort, status)
            assert await _pages(client, amy, params, limit) == expected, (sort, status)
    everything = await _pages(client, amy, {}, limit)
    assert len(everything) == len(set(everything)) == 3 + 1 + 3 + 3  # owned, Bob's shared one, the two pools
    assert str(leads["bobs"][1]) in everything and str(leads["bobs"][0]) not in everything
    # Bob sees his own and the pool, never Amy's
    bobs = await _pages(client, bob, {}, limit)
    assert set(bobs) == {str(lead_id) for lead_id in leads["bobs"] + leads["pool"]}


def _leads_rows_read(plan: dict[str, Any]) -> int:
    """Rows of `leads` a plan's nodes returned or filtered away, over all their loops."""
    read = 0
    if plan.get("Relation Name") == "leads":
        loops = plan.get("Actual Loops", 1)
        read += int((plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops)
    return read + sum(_leads_rows_read(child) for child in plan.get("Plans", []))


async def test_an_agents_pool_and_collaborations_are_read_from_its_own_rows_even_in_a_generic_plan(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    """The fast path's statements are prepared once per connection, and PostgreSQL may give a prepared statement
    one generic plan for every agent. For the pool and the collaborations as conditions, that plan walked the
    organization's leads newest first, testing each for the agent's properties or collaborations: every one of
    them for an agent with few. Read from the agent's teams and collaborations, a page reads about a page."""
    cy = await person(client, org, "Cy")
    elsewhere = await property_with_team(client, org, [])
    mine = await property_with_team(client, org, [(cy, 1)], strategy="pool")
    others = await insert_leads(sessionmaker, org.org_id, 600, property_id=elsewhere)  # unowned, not Cy's
    dee = await person(client, org, "Dee")  # collaborates on all of them: the collaborations are Dee's
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert(LeadCollaborator),
            [{"org_id": org.org_id, "lead_id": lead_id, "user_id": dee.id} for lead_id in others],
        )
    await insert_leads(sessionmaker, org.org_id, 3, property_id=mine)
    read = fast_reads._list_read(LeadFilters(), filter_terms(LeadFilters()), None, scoped=True)  # the fast path's
    values = {**read.defaults, "org_id": org.org_id, "user_id": cy.id, "rows": DEFAULT_PAGE + 1}
    arguments = ", ".join(f"'{values[name]}'" for name in read.parameters)
    async with sessionmaker() as session:
        await session.execute(text("ANALYZE leads"))
        await session.execute(text("ANALYZE property_team_members"))
        await session.execute(text("ANALYZE lead_collaborators"))
        await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        await session.execute(text(f"PREPARE pool_page AS {read.sql}"))
        found = (await session.execute(text(f"EXECUTE pool_page({arguments})"))).all()
        explained = await session.scalar(text(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE pool_page({arguments})"))
        generic = await session.scalar(
            text("SELECT generic_plans FROM pg_prepared_statements WHERE name = 'pool_page'")
        )
        await session.execute(text("DEALLOCATE pool_page"))
    assert generic and generic >= 1  # the prepared statement ran on its generic plan
    assert len(found) == 3
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    assert _leads_rows_read(plan) < 60, _leads_rows_read(plan)
