"""Free-text search (GET /v1/leads?q=) on contacts.search_text, which PostgreSQL triggers keep right."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import Contact, ContactIdentity, Lead
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads
from tests.signals.helpers import deliver

SessionMaker = async_sessionmaker[AsyncSession]


async def _ids(client: httpx.AsyncClient, org: OrgFixture, q: str, **params: Any) -> list[str]:
    response = await client.get("/v1/leads", params={"q": q, "limit": 100, **params}, headers=org.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def _people(sessionmaker: SessionMaker, org_id: uuid.UUID, people: list[dict[str, Any]]) -> list[str]:
    """One contact (with its email and phone identities) and one lead each, one minute apart, oldest first."""
    start = datetime.now(UTC) - timedelta(days=3)
    lead_ids = []
    async with sessionmaker() as session, session.begin():
        for n, person in enumerate(people):
            contact_id, lead_id = uuid.uuid4(), uuid.uuid4()
            first, last = person.get("first"), person.get("last")
            full = " ".join(part for part in (first, last) if part) or None
            await session.execute(
                insert(Contact).values(
                    id=contact_id,
                    org_id=org_id,
                    kind="tenant",
                    full_name=full,
                    first_name=first,
                    last_name=last,
                    primary_email=person.get("email"),
                    primary_phone=person.get("phone"),
                )
            )
            for kind in ("email", "phone"):
                if person.get(kind):
                    await session.execute(
                        insert(ContactIdentity).values(
                            id=uuid.uuid4(), org_id=org_id, contact_id=contact_id, kind=kind, value=person[kind]
                        )
                    )
            at = start + timedelta(minutes=n)
            await session.execute(
                insert(Lead).values(
                    id=lead_id,
                    org_id=org_id,
                    contact_id=contact_id,
                    status="new",
                    temperature="hot",
                    source="zillow",
                    created_at=at,
                    updated_at=at,
                    preferred_tour_times=[],
                )
            )
            lead_ids.append(str(lead_id))
    return lead_ids


async def _search_text(sessionmaker: SessionMaker, contact_id: Any) -> str:
    async with sessionmaker() as session:
        value = await session.scalar(select(Contact.search_text).where(Contact.id == uuid.UUID(str(contact_id))))
        assert value is not None
        return value


async def test_each_kind_of_search_finds_the_right_leads_newest_first(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    smith_a, smith_b, jones, smithers, mo, under = await _people(
        sessionmaker,
        org.org_id,
        [
            {"first": "James", "last": "Smith", "email": "james.smith@gmail.com", "phone": "+17038683162"},
            {"first": "Ana", "last": "Smith", "email": "ana@smith-family.net", "phone": "+15125550101"},
            {"first": "Mary", "last": "Jones", "email": "mj@example.org", "phone": "+442071838750"},
            {"first": "Zoe", "last": "Smithers", "email": "zoe@example.org"},
            {"first": "Mo", "last": "Ali", "phone": "+15125550199"},
            {"first": "Under", "last": "Score", "email": "under_score@example.org"},
        ],
    )
    # names: substring, any case, newest first; a full name; first name only; across first and last
    assert await _ids(client, org, "smith") == [smithers, smith_b, smith_a]
    assert await _ids(client, org, "SMITH", sort="created_at") == [smith_a, smith_b, smithers]
    assert await _ids(client, org, "James Smith") == [smith_a]
    assert await _ids(client, org, "ary jon") == [jones]
    # emails: prefix, substring, domain, whole address in any case
    assert await _ids(client, org, "james.sm") == [smith_a]
    assert await _ids(client, org, "smith-family") == [smith_b]
    assert await _ids(client, org, "@example.org") == [under, smithers, jones]
    assert await _ids(client, org, "James.Smith@Gmail.com") == [smith_a]
    # phones: E.164 prefix, national digits (+1 assumed), formatted, bare digits with the country code
    assert await _ids(client, org, "+1703868") == [smith_a]
    assert await _ids(client, org, "7038") == [smith_a]
    assert await _ids(client, org, "(703) 868-3162") == [smith_a]
    assert await _ids(client, org, "17038683162") == [smith_a]
    assert await _ids(client, org, "512555") == [mo, smith_b]
    assert await _ids(client, org, "+44 20 7183 8750") == [jones]
    assert await _ids(client, org, "8683162") == []  # a phone matches from its start, not in the middle
    # short text: the start of a word (a name, an email, a phone's digits)
    assert await _ids(client, org, "mo") == [mo]
    assert await _ids(client, org, "Z") == [smithers]
    # LIKE wildcards are literal text
    assert await _ids(client, org, "under_") == [under]
    assert await _ids(client, org, "y_j") == []  # would match "mary jones" as a wildcard
    assert await _ids(client, org, "%") == []
    assert await _ids(client, org, "nobody") == []


async def test_search_pages_with_the_cursor(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    ids = await insert_leads(sessionmaker, org.org_id, 9, with_identities=True)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "test", "limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/leads", params=params, headers=org.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [str(i) for i in reversed(ids)]


async def test_triggers_follow_name_changes_and_new_identities(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    created = await client.post(
        "/v1/leads",
        json={"first_name": "Priya", "last_name": "Raman", "email": "priya.r@example.com", "phone": "(512) 555-0177"},
        headers=org.headers,
    )
    assert created.status_code == 201, created.text
    lead = created.json()
    assert await _search_text(sessionmaker, lead["contact_id"]) == (
        "\npriya raman\n+15125550177\n15125550177\npriya.r@example.com"
    )
    for q in ("raman", "priya.r@", "5125550177"):
        assert await _ids(client, org, q) == [lead["id"]], q

    renamed = await client.patch(
        f"/v1/leads/{lead['id']}", json={"last_name": "Krishnan"}, headers={**org.headers, "If-Match": '"1"'}
    )
    assert renamed.status_code == 200, renamed.text
    assert await _ids(client, org, "krishnan") == [lead["id"]]
    assert await _ids(client, org, "priya krishnan") == [lead["id"]]
    assert await _ids(client, org, "raman") == []

    # a later signal from the same renter (by email) with a new phone adds an identity
    await deliver(
        client, sessionmaker, org.org_id, email="priya.r@example.com", phone="(737) 555-0188", first_name="Priya"
    )
    assert await _ids(client, org, "737555") == [lead["id"]]

    # any writer, even raw SQL: identities deleted and moved
    async with sessionmaker() as session, session.begin():
        await session.execute(
            text("DELETE FROM contact_identities WHERE contact_id = :c AND kind = 'email'"),
            {"c": uuid.UUID(lead["contact_id"])},
        )
    assert await _ids(client, org, "priya.r@") == []
    assert await _ids(client, org, "737555") == [lead["id"]]


async def test_merge_and_undo_keep_search_right(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    a = await deliver(client, sessionmaker, org.org_id, email="kim.lee@example.com", first_name="Kim", last_name=None)
    b = await deliver(client, sessionmaker, org.org_id, phone="(917) 555-0199", first_name="Kimberly", last_name="Lee")
    before = {c: await _search_text(sessionmaker, c) for c in (a["contact_id"], b["contact_id"])}
    assert await _ids(client, org, "9175550199") == [b["lead_id"]]

    merged = await client.post(
        f"/v1/contacts/{a['contact_id']}/merge", json={"merge_contact_id": b["contact_id"]}, headers=org.headers
    )
    assert merged.status_code == 201, merged.text
    survivor = await _search_text(sessionmaker, a["contact_id"])
    assert "+19175550199" in survivor and "kim.lee@example.com" in survivor
    by_phone = await _ids(client, org, "9175550199")
    by_email = await _ids(client, org, "kim.lee@")
    assert by_phone == by_email and b["lead_id"] in by_phone and a["lead_id"] in by_phone

    undone = await client.post(f"/v1/merges/{merged.json()['id']}/undo", headers=org.headers)
    assert undone.status_code == 200, undone.text
    assert {c: await _search_text(sessionmaker, c) for c in before} == before
    assert await _ids(client, org, "9175550199") == [b["lead_id"]]
    assert await _ids(client, org, "kim.lee@") == [a["lead_id"]]


async def test_a_direct_write_of_search_text_is_recomputed(sessionmaker: SessionMaker, org: OrgFixture) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id, 1, with_identities=True)
    async with sessionmaker() as session, session.begin():
        contact_id = await session.scalar(select(Lead.contact_id).where(Lead.id == lead_id))
        expected = await _search_text(sessionmaker, contact_id)
        await session.execute(update(Contact).where(Contact.id == contact_id).values(search_text="forged"))
    assert await _search_text(sessionmaker, contact_id) == expected
    assert expected.startswith("\nrenter0 test\n+15120000000\n15120000000\nrenter0.")
