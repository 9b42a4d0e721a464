"""Statements sent straight to asyncpg (shared/repositories/driver.py) stay inside the session's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest
from sqlalchemy import ARRAY, Column, MetaData, String, Table, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.contacts.resolution import insert_contact
from shared.models import Contact, LeadEvent
from shared.repositories import driver
from shared.repositories.driver import DriverStatement
from tests.conftest import OrgFixture

INSERT_NOTE = DriverStatement.of(
    text(
        "INSERT INTO contacts (id, org_id, kind, full_name, sms_consent, email_consent, created_at, updated_at)"
        " VALUES (:id, :org_id, 'tenant', :name, 'unknown', 'unknown', now(), now()) RETURNING id, full_name"
    )
)


def test_named_parameters_become_asyncpg_positions_once_each() -> None:
    statement = DriverStatement.of(text("SELECT :a, :b, :a"))
    assert statement.sql == "SELECT $1, $2, $1"
    assert statement.names == ("a", "b")


async def _names(sessionmaker: async_sessionmaker[AsyncSession], org_id: uuid.UUID) -> list[str | None]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(Contact.full_name).where(Contact.org_id == org_id)))


@contextmanager
def sent_to_asyncpg() -> Iterator[list[str]]:
    seen: list[str] = []
    driver.OBSERVERS.append(seen.append)
    try:
        yield seen
    finally:
        driver.OBSERVERS.remove(seen.append)


async def test_a_driver_statement_joins_the_transaction_it_is_sent_in(
    sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture
) -> None:
    with sent_to_asyncpg() as seen:
        async with sessionmaker() as session, session.begin():
            await session.execute(text("SELECT 1"))  # the transaction has begun on the server
            rows = await driver.fetch(session, INSERT_NOTE, {"id": uuid.uuid4(), "org_id": org.org_id, "name": "Ann"})
            assert [row.full_name for row in rows] == ["Ann"]
            # the same transaction sees it through SQLAlchemy, before commit
            assert await session.scalar(select(Contact.full_name).where(Contact.id == rows[0].id)) == "Ann"
            await session.rollback()
    assert seen == [INSERT_NOTE.sql]  # it went to asyncpg
    assert await _names(sessionmaker, org.org_id) == []  # and rolled back with the transaction


async def test_before_the_transaction_begins_it_goes_through_sqlalchemy_which_begins_it(
    sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture
) -> None:
    """SQLAlchemy sends BEGIN with its first statement: a driver statement first would otherwise autocommit."""
    with sent_to_asyncpg() as seen:
        async with sessionmaker() as session, session.begin():
            rows = await driver.fetch(session, INSERT_NOTE, {"id": uuid.uuid4(), "org_id": org.org_id, "name": "Bo"})
            assert [row.full_name for row in rows] == ["Bo"]
            await session.rollback()
    assert seen == []
    assert await _names(sessionmaker, org.org_id) == []


async def test_a_failing_driver_statement_rolls_back_with_its_savepoint_and_the_transaction_goes_on(
    sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture
) -> None:
    taken = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await driver.fetch(session, INSERT_NOTE, {"id": taken, "org_id": org.org_id, "name": "Cy"})
        with pytest.raises(asyncpg.UniqueViolationError):
            async with session.begin_nested():
                await driver.fetch(session, INSERT_NOTE, {"id": taken, "org_id": org.org_id, "name": "Dee"})
        await driver.fetch(session, INSERT_NOTE, {"id": uuid.uuid4(), "org_id": org.org_id, "name": "Eve"})
    assert sorted(name or "" for name in await _names(sessionmaker, org.org_id)) == ["Cy", "Eve"]


async def test_a_new_contact_is_written_with_its_identities_and_found_in_the_session(
    sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture
) -> None:
    contact_id = uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await session.execute(text("SELECT 1"))
        held = await insert_contact(
            session, org.org_id, contact_id, [("phone", "+15125550199"), ("email", "fay@example.com")], full_name="Fay"
        )
        assert held == {("email", "fay@example.com"), ("phone", "+15125550199")}
        contact = await session.get(Contact, contact_id)  # the identity map: no SELECT needed
        assert contact is not None and contact.full_name == "Fay"
    async with sessionmaker() as session:  # committed, with the search text its identities give it
        search_text = await session.scalar(select(Contact.search_text).where(Contact.id == contact_id))
        assert search_text is not None and "fay@example.com" in search_text


def test_the_set_insert_reads_one_typed_array_per_column_and_refuses_array_columns() -> None:
    """`insert_rows` sends one array per column; `unnest` would flatten an array column's values into rows."""
    sql = driver._unnest_insert(LeadEvent.__table__, ("id", "type", "data"))  # type: ignore[arg-type]
    assert (
        sql
        == "INSERT INTO lead_events (id, type, data) SELECT * FROM unnest($1::UUID[], $2::VARCHAR(32)[], $3::JSONB[])"
    )
    tagged = Table("tagged", MetaData(), Column("id", String, primary_key=True), Column("tags", ARRAY(String)))
    with pytest.raises(TypeError, match="array column"):
        driver._unnest_insert(tagged, ("id", "tags"))


async def _contact(session: AsyncSession, org_id: uuid.UUID, name: str) -> uuid.UUID:
    rows = await driver.fetch(session, INSERT_NOTE, {"id": uuid.uuid4(), "org_id": org_id, "name": name})
    return rows[0].id


@pytest.mark.parametrize("begun", [True, False], ids=["on asyncpg", "through sqlalchemy"])
async def test_the_set_update_writes_each_rows_own_values_where_the_condition_holds(
    sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture, begun: bool
) -> None:
    """`update_rows`: one UPDATE … FROM unnest for the rows, each row's values on its own row only, a row the
    condition excludes left as it was; before SQLAlchemy has begun the transaction it goes through SQLAlchemy
    (which begins it), and rolls back with it either way."""
    async with sessionmaker() as session, session.begin():
        ann, bo, cy = [await _contact(session, org.org_id, name) for name in ("Ann", "Bo", "Cy")]
    rows = [
        {"id": ann, "full_name": "Ann Lee", "sms_consent": "opted_in"},
        {"id": bo, "full_name": "Bo Park", "sms_consent": "opted_out"},
        {"id": cy, "full_name": "Cy Diaz", "sms_consent": "opted_in"},
    ]
    with sent_to_asyncpg() as seen:
        async with sessionmaker() as session, session.begin():
            if begun:
                await session.execute(text("SELECT 1"))
            await driver.update_rows(session, Contact.__table__, rows, condition="t.full_name <> 'Bo'")  # type: ignore[arg-type]
    assert len(seen) == 1 and seen[0].startswith("UPDATE contacts AS t SET full_name = v.full_name")
    async with sessionmaker() as session:
        found = {
            row.id: (row.full_name, row.sms_consent)
            for row in await session.execute(
                select(Contact.id, Contact.full_name, Contact.sms_consent).where(Contact.org_id == org.org_id)
            )
        }
    assert found == {ann: ("Ann Lee", "opted_in"), bo: ("Bo", "unknown"), cy: ("Cy Diaz", "opted_in")}
    async with sessionmaker() as session, session.begin():
        if begun:
            await session.execute(text("SELECT 1"))
        await driver.update_rows(session, Contact.__table__, [{"id": ann, "full_name": "Nobody"}])  # type: ignore[arg-type]
        await session.rollback()
    async with sessionmaker() as session:
        assert await session.scalar(select(Contact.full_name).where(Contact.id == ann)) == "Ann Lee"


def test_the_set_update_joins_on_its_key_and_refuses_array_columns() -> None:
    positional, named = driver._unnest_update(LeadEvent.__table__, "id", ("type", "id", "data"), "t.type <> 'x'")  # type: ignore[arg-type]
    assert positional == (
        "UPDATE lead_events AS t SET type = v.type, data = v.data"
        " FROM unnest($1::VARCHAR(32)[], $2::UUID[], $3::JSONB[]) AS v(type, id, data)"
        " WHERE t.id = v.id AND t.type <> 'x'"
    )
    assert "CAST(:a2 AS UUID[])" in named.text
    tagged = Table("tagged", MetaData(), Column("id", String, primary_key=True), Column("tags", ARRAY(String)))
    with pytest.raises(TypeError, match="array column"):
        driver._unnest_update(tagged, "id", ("id", "tags"))


async def test_the_set_update_of_no_rows_sends_nothing(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    with sent_to_asyncpg() as seen:
        async with sessionmaker() as session, session.begin():
            await driver.update_rows(session, Contact.__table__, [])  # type: ignore[arg-type]
    assert seen == []
