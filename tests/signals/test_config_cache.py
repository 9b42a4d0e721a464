"""Configuration kept across intake batches (#16, services/api/configcache.py): read once, never stale.

A batch reads the organization's configuration number; what an earlier batch read under the same number is not
read again. Every change to the configuration, through any writer, gives a new number in the same transaction
(migration q22c's triggers), so the next batch acts on the change.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import configcache
from services.api.configcache import ConfigCache, detached_copy
from shared.models import Lead, OutboundMessage, User
from tests.conftest import OrgFixture
from tests.owners.helpers import person, property_with_team
from tests.signals.helpers import SERVICE_HEADERS, envelope
from tests.signals.test_statement_budget import counting

SessionMaker = async_sessionmaker[AsyncSession]


def renters(org: OrgFixture, property_id: uuid.UUID | None = None, **fields: Any) -> list[dict[str, Any]]:
    """Two new renters' web-form tour requests: a list, so the API applies them as one batch."""
    return [
        envelope(
            org.org_id,
            email=fields.get("email") or f"r.{uuid.uuid4().hex[:10]}@example.org",
            first_name=fields.get("first_name", "Dana"),
            event="tour_request",
            channel="web",
            source="website",
            property_id=property_id,
            message="Can I see it Saturday?",
        )
        for _ in range(2)
    ]


async def batch(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = await client.post("/v1/internal/signals", json=bodies, headers=SERVICE_HEADERS)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()
    assert [result["status"] for result in results] == [200] * len(bodies), results
    return [result["outcome"] for result in results]


async def version(sessionmaker: SessionMaker, org_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        found = await session.scalar(text("SELECT config_version FROM organizations WHERE id = :id"), {"id": org_id})
        assert found is not None
        return int(found)


def tables_read(statements: list[str]) -> set[str]:
    return {
        table
        for statement in statements
        if statement.lstrip().upper().startswith(("SELECT", "WITH"))
        for table in re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)", statement)
    }


async def test_the_next_batch_reads_no_configuration_and_what_it_skips_is_all_versioned(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    amy = await person(client, org, "Amy")
    property_id = await property_with_team(client, org, [(amy, 1)])
    with counting() as cold:
        await batch(client, renters(org, property_id))
    with counting() as warm:
        await batch(client, renters(org, property_id))
    skipped = {" ".join(s.split()) for s in cold} - {" ".join(s.split()) for s in warm}
    assert len(cold) - len(warm) >= 8, f"{len(cold)} statements cold, {len(warm)} warm"
    read_again = tables_read(warm) & set(configcache.CONFIG_TABLES)
    assert read_again == {"organizations"}, read_again  # its number, nothing else
    assert [s for s in warm if "config_version" in s and "organizations" in s], "the number is read"
    # what the warm batch did not read must be covered by the triggers, or a change would go unseen
    assert tables_read(list(skipped)) <= set(configcache.CONFIG_TABLES), tables_read(list(skipped))


async def test_a_change_through_the_api_reaches_the_very_next_batch(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    amy, bob = await person(client, org, "Amy"), await person(client, org, "Bob")
    property_id = await property_with_team(client, org, [(amy, 1)])

    async def owners(outcomes: list[dict[str, Any]]) -> set[uuid.UUID | None]:
        async with sessionmaker() as session:
            return {(await session.get_one(Lead, uuid.UUID(o["lead_id"]))).owner_id for o in outcomes}

    assert await owners(await batch(client, renters(org, property_id))) == {amy.id}
    assert await owners(await batch(client, renters(org, property_id))) == {amy.id}  # kept: nothing changed

    team = await client.put(
        f"/v1/properties/{property_id}/team", json={"members": [{"user_id": str(bob.id)}]}, headers=org.headers
    )
    assert team.status_code == 200, team.text
    assert await owners(await batch(client, renters(org, property_id))) == {bob.id}

    path = f"/v1/properties/{property_id}/assignment"
    pooled = await client.put(path, json={"strategy": "pool"}, headers=org.headers)
    assert pooled.status_code == 200, pooled.text
    assert await owners(await batch(client, renters(org, property_id))) == {None}

    # the first reply's template: customized between two batches, the next renter gets the new words
    first = await batch(client, renters(org, property_id))
    async with sessionmaker() as session:
        reply = await session.scalar(
            select(OutboundMessage).where(
                OutboundMessage.lead_id == uuid.UUID(first[0]["lead_id"]), OutboundMessage.kind == "reply"
            )
        )
    assert reply is not None and reply.template
    custom = await client.post(
        "/v1/templates",
        json={"key": reply.template, "channel": reply.channel, "subject": "Hi", "body": "Custom {{first_name}}!"},
        headers=org.headers,
    )
    assert custom.status_code == 201, custom.text
    after = await batch(client, renters(org, property_id, first_name="Lena"))
    async with sessionmaker() as session:
        bodies = set(
            await session.scalars(
                select(OutboundMessage.body).where(
                    OutboundMessage.lead_id.in_([uuid.UUID(o["lead_id"]) for o in after]),
                    OutboundMessage.kind == "reply",
                )
            )
        )
    assert bodies == {"Custom Lena!"}

    # the blocklist: an address staff type for walk-ins no longer joins two renters into one
    shared_email = f"front.desk.{uuid.uuid4().hex[:6]}@example.org"
    joined = await batch(client, renters(org, property_id, email=shared_email))
    assert len({o["contact_id"] for o in joined}) == 1
    blocked = await client.post("/v1/blocklist", json={"kind": "email", "value": shared_email}, headers=org.headers)
    assert blocked.status_code == 201, blocked.text
    apart = await batch(client, renters(org, property_id, email=shared_email))
    assert len({o["contact_id"] for o in apart} | {joined[0]["contact_id"]}) == 3


async def test_a_batch_writes_no_configuration_and_every_writer_moves_the_number(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    """A batch's own writes never move the number (so what it reads is committed configuration); each kind of
    write to a configuration table does, and an organization's own row too."""
    await batch(client, renters(org))
    before = await version(sessionmaker, org.org_id)
    await batch(client, renters(org))
    assert await version(sessionmaker, org.org_id) == before

    seen = [before]

    async def moved() -> None:
        now = await version(sessionmaker, org.org_id)
        assert now > seen[-1]
        seen.append(now)

    amy = await person(client, org, "Amy")  # users: insert (and an API key)
    await moved()
    away = await client.patch(f"/v1/users/{amy.id}", json={"away_until": "2099-01-01T00:00:00Z"}, headers=org.headers)
    assert away.status_code == 200, away.text  # users: update
    await moved()
    entry = await client.post("/v1/blocklist", json={"kind": "phone", "value": "(415) 555-0100"}, headers=org.headers)
    assert entry.status_code == 201
    await moved()
    gone = await client.delete(f"/v1/blocklist/{entry.json()['id']}", headers=org.headers)
    assert gone.status_code == 204  # delete
    await moved()
    settings = await client.patch("/v1/owners/settings", json={"agents_see_all": True}, headers=org.headers)
    assert settings.status_code == 200, settings.text  # the organization's own row
    await moved()
    async with sessionmaker() as session, session.begin():  # a writer that is not the API: the same
        await session.execute(text("UPDATE users SET name = 'Amy B.' WHERE id = :id"), {"id": amy.id})
    await moved()


async def test_every_configuration_table_carries_the_triggers(sessionmaker: SessionMaker) -> None:
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT c.relname, t.tgname, p.proname FROM pg_trigger AS t"
                    " JOIN pg_class AS c ON c.oid = t.tgrelid JOIN pg_proc AS p ON p.oid = t.tgfoid"
                    " WHERE NOT t.tgisinternal AND p.proname LIKE '%config%'"
                )
            )
        ).all()
    found: dict[str, set[str]] = {}
    for table, name, _ in rows:
        found.setdefault(table, set()).add(name.removeprefix(f"{table}_"))
    expected = {"config_insert", "config_update", "config_delete", "config_truncate"}
    assert {table: found.get(table) for table in configcache.CONFIG_TABLES if table != "organizations"} == {
        table: expected for table in configcache.CONFIG_TABLES if table != "organizations"
    }
    assert found["organizations"] == {"config_version"}


def test_the_cache_keeps_one_number_per_organization_and_never_goes_back() -> None:
    cache = ConfigCache(max_orgs=2, max_values=3)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put(a, 5, "pool", "five")
    assert cache.get(a, 5, "pool") == (True, "five")
    assert cache.get(a, 6, "pool") == (False, None)  # another number: read again
    cache.put(a, 6, "pool", "six")
    assert cache.get(a, 5, "pool") == (False, None)
    cache.put(a, 5, "pool", "stale")  # a batch that started earlier finishes later: ignored
    assert cache.get(a, 6, "pool") == (True, "six")
    for key in ("x", "y", "z"):  # past max_values the organization starts over
        cache.put(a, 6, key, key)
    assert cache.get(a, 6, "pool") == (False, None) and cache.get(a, 6, "z") == (True, "z")
    cache.put(b, 1, "k", "b")
    cache.get(a, 6, "z")  # a was used last: b goes first
    cache.put(c, 1, "k", "c")
    assert cache.get(b, 1, "k") == (False, None)
    assert cache.get(a, 6, "z") == (True, "z") and cache.get(c, 1, "k") == (True, "c")


async def test_a_kept_row_belongs_to_no_session(sessionmaker: SessionMaker, org: OrgFixture) -> None:
    async with sessionmaker() as session:
        admin = await session.get_one(User, org.admin_user_id)
        copy = detached_copy(admin)
        assert copy is not admin and (copy.id, copy.email, copy.role) == (admin.id, admin.email, admin.role)
        assert copy not in session
        await session.rollback()  # expires the session's rows, not the copy
        assert copy.email and copy.name == "Admin"
