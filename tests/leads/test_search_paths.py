"""Search reads the lead's own copy of the contact's search text (migration r16): the copy must follow every
writer, and searching it must answer exactly what searching the contacts would."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.leads.queries import search_condition
from shared.models import Contact, Lead
from tests.conftest import OrgFixture
from tests.signals.helpers import deliver

SessionMaker = async_sessionmaker[AsyncSession]


async def _ids(client: httpx.AsyncClient, org: OrgFixture, q: str, **params: str) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page_params = {"q": q, "limit": "2", **params, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/leads", params=page_params, headers=org.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def _by_contacts(sessionmaker: SessionMaker, org_id: uuid.UUID, q: str, oldest_first: bool) -> list[str]:
    """The same search over contacts.search_text joined to leads: what the lead's copy must agree with."""
    order = (Lead.created_at.asc(), Lead.id.asc()) if oldest_first else (Lead.created_at.desc(), Lead.id.desc())
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Lead.id)
            .join(Contact, Contact.id == Lead.contact_id)
            .where(Lead.org_id == org_id, search_condition(q, Contact.search_text))
            .order_by(*order)
        )
        return [str(row) for row in rows]


async def _copies_disagree(sessionmaker: SessionMaker, org_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        return int(
            await session.scalar(
                text(
                    "SELECT count(*) FROM leads l JOIN contacts c ON c.id = l.contact_id "
                    "WHERE l.org_id = :org AND l.search_text IS DISTINCT FROM c.search_text"
                ),
                {"org": org_id},
            )
            or 0
        )


@pytest.mark.parametrize("q", ["harper", "Harper Q", "(415) 555-01", "+1415555", "h3@", "q", "nobody-here"])
async def test_the_lead_copy_answers_what_the_contacts_would(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, q: str
) -> None:
    for index in range(5):
        await deliver(
            client,
            sessionmaker,
            org.org_id,
            email=f"h{index}@example.com",
            phone=f"(415) 555-01{index:02d}",
            first_name="Harper",
            last_name=f"Q{index}",
        )
    await deliver(client, sessionmaker, org.org_id, email="other@example.com", first_name="Sam", last_name="Other")
    newest_first = await _ids(client, org, q)
    oldest_first = await _ids(client, org, q, sort="created_at")
    assert newest_first == await _by_contacts(sessionmaker, org.org_id, q, oldest_first=False)
    assert oldest_first == await _by_contacts(sessionmaker, org.org_id, q, oldest_first=True)
    assert len(newest_first) == {"nobody-here": 0, "h3@": 1}.get(q, 5)
    assert await _copies_disagree(sessionmaker, org.org_id) == 0


async def test_the_copy_follows_renames_merges_undo_and_erasure(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    a = await deliver(client, sessionmaker, org.org_id, email="kim.lee@example.com", first_name="Kim", last_name=None)
    b = await deliver(client, sessionmaker, org.org_id, phone="(917) 555-0199", first_name="Kimberly", last_name="Lee")
    renamed = await client.patch(
        f"/v1/leads/{a['lead_id']}", json={"last_name": "Park"}, headers={**org.headers, "If-Match": '"1"'}
    )
    assert renamed.status_code == 200, renamed.text
    assert await _ids(client, org, "kim park") == [a["lead_id"]]
    assert await _copies_disagree(sessionmaker, org.org_id) == 0

    merged = await client.post(
        f"/v1/contacts/{a['contact_id']}/merge", json={"merge_contact_id": b["contact_id"]}, headers=org.headers
    )
    assert merged.status_code == 201, merged.text
    assert await _copies_disagree(sessionmaker, org.org_id) == 0
    assert set(await _ids(client, org, "9175550199")) == {a["lead_id"], b["lead_id"]}

    undone = await client.post(f"/v1/merges/{merged.json()['id']}/undo", headers=org.headers)
    assert undone.status_code == 200, undone.text
    assert await _copies_disagree(sessionmaker, org.org_id) == 0
    assert await _ids(client, org, "9175550199") == [b["lead_id"]]

    # erasure blanks the contact's names and identities: nothing of them stays searchable on the lead
    erased = await client.delete(f"/v1/contacts/{b['contact_id']}", headers=org.headers)
    assert erased.status_code == 200, erased.text
    assert await _copies_disagree(sessionmaker, org.org_id) == 0
    assert await _ids(client, org, "9175550199") == []
    assert await _ids(client, org, "kimberly") == []


async def test_a_huge_contact_is_capped_on_the_lead_and_still_found(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker
) -> None:
    """A btree entry holds ~2,700 bytes: the lead's copy stops at 2,000, whole characters, the rest unsaid."""
    wide = "\U0001f600" * 150  # 600 bytes a name
    async with sessionmaker() as session, session.begin():
        contact_id, lead_id = uuid.uuid4(), uuid.uuid4()
        await session.execute(
            text(
                "INSERT INTO contacts (id, org_id, kind, full_name, first_name, last_name) "
                "VALUES (:id, :org, 'tenant', :full, :first, :last)"
            ),
            {"id": contact_id, "org": org.org_id, "full": f"Wide {wide}", "first": "Wide", "last": wide},
        )
        await session.execute(
            text(
                "INSERT INTO contact_identities (id, org_id, contact_id, kind, value) "
                "SELECT gen_random_uuid(), :org, :c, 'email', 'wide' || n || '@example.org' "
                "FROM generate_series(10, 99) AS n"
            ),
            {"org": org.org_id, "c": contact_id},
        )
        await session.execute(
            text(
                "INSERT INTO leads (id, org_id, contact_id, status, temperature, preferred_tour_times, version) "
                "VALUES (:id, :org, :c, 'new', 'hot', '{}', 1)"
            ),
            {"id": lead_id, "org": org.org_id, "c": contact_id},
        )
    async with sessionmaker() as session:
        full, copy = (
            await session.execute(
                text(
                    "SELECT c.search_text, l.search_text FROM leads l JOIN contacts c ON c.id = l.contact_id "
                    "WHERE l.id = :id"
                ),
                {"id": lead_id},
            )
        ).one()
    assert len(full.encode()) > 2000 >= len(copy.encode()) > 1900
    assert full.startswith(copy)
    assert await _ids(client, org, "wide10@") == [str(lead_id)]  # the first identities are on the copy


@pytest.mark.parametrize("q", ["(415) 555-01", "+1415555", "4155550103"])
async def test_a_phone_search_answers_the_same_by_its_contacts_or_while_filtering(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, monkeypatch: pytest.MonkeyPatch, q: str
) -> None:
    """Few matching phones: their contacts first, then their leads. More than the cap: one statement."""
    from services.api.leads import queries

    for index in range(5):
        await deliver(client, sessionmaker, org.org_id, phone=f"(415) 555-01{index:02d}", first_name=f"P{index}")
    by_contacts = await _ids(client, org, q)
    oldest_first = await _ids(client, org, q, sort="created_at")
    monkeypatch.setattr(queries, "PHONE_CANDIDATES", 2)
    assert await _ids(client, org, q) == by_contacts
    assert await _ids(client, org, q, sort="created_at") == oldest_first
    assert by_contacts == await _by_contacts(sessionmaker, org.org_id, q, oldest_first=False)
    assert len(by_contacts) == (1 if q == "4155550103" else 5)
