"""The COPY-based export writes byte for byte what the row-by-row `csv.writer` export wrote, applies the list's
filters, and gives its connection back when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, ClassVar

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.leads import export
from services.api.leads.queries import LeadFilters
from shared.config import Settings
from shared.models import Contact, Lead
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads, insert_property


def _reference_cell(key: str, value: Any) -> Any:
    """The Python export this replaced, cell by cell (the contract)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if key in export._TEXT and isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def _reference_csv(
    sessionmaker: async_sessionmaker[AsyncSession], org_id: uuid.UUID, filters: LeadFilters
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(export.COLUMNS)
    async with sessionmaker() as session:
        rows = (await session.execute(export.export_query(org_id, filters))).mappings().all()
    writer.writerows([_reference_cell(key, row[key]) for key in export.COLUMNS] for row in rows)
    return buffer.getvalue()


async def _export(client: httpx.AsyncClient, org: OrgFixture, query: str = "") -> str:
    response = await client.get("/v1/leads/export.csv" + query, headers=org.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    return response.content.decode()


async def _tricky_leads(sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture) -> list[uuid.UUID]:
    """One lead per awkward value: formulas, quotes, commas, newlines, empty strings, NULLs, microseconds."""
    property_id = await insert_property(sessionmaker, org.org_id, '+Plus, "Quoted" Place')
    start = datetime(2024, 3, 9, 23, 30, 0, tzinfo=UTC)
    plain = await insert_leads(sessionmaker, org.org_id, 1, start=start)
    full = await insert_leads(
        sessionmaker,
        org.org_id,
        1,
        start=start + timedelta(hours=1),
        property_id=property_id,
        owner_id=org.admin_user_id,
        move_in_date=date(2025, 1, 2),
        move_in_text='=HYPERLINK("http://x")',
        bedrooms=2,
        bathrooms=1.5,
        budget_min=0,
        budget_max=1900,
        pets=False,
        pets_text="two cats,\nno dogs",
        unit_type="\tstudio",
        sub_source="@mention",
        latest_source="-5",
        first_response_at=datetime(2024, 3, 10, 1, 2, 3, 4, tzinfo=UTC),
        first_response_seconds=42,
        last_touch_at=datetime(2024, 3, 10, 5, 0, tzinfo=UTC),
        next_action_type="call",
        next_action_due_at=datetime(2024, 3, 11, 9, 0, 0, 500000, tzinfo=UTC),
        lost_reason="",
        source="\rcarriage",
    )
    quiet = await insert_leads(
        sessionmaker, org.org_id, 1, start=start + timedelta(hours=2), pets=True, unit_type="", sub_source="a=b"
    )
    async with sessionmaker() as session, session.begin():
        contact_id = (await session.get(Lead, full[0])).contact_id  # type: ignore[union-attr]
        await session.execute(
            update(Contact).where(Contact.id == contact_id).values(first_name='Zoë "Z"', last_name="-Minus")
        )
    return plain + full + quiet


async def test_export_is_byte_for_byte_the_csv_writer_contract(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await _tricky_leads(sessionmaker, org)
    body = await _export(client, org)
    assert body == await _reference_csv(sessionmaker, org.org_id, LeadFilters())
    assert body.startswith(",".join(export.COLUMNS) + "\r\n")
    rows = list(csv.DictReader(io.StringIO(body)))
    full = rows[1]  # newest first
    assert full["move_in_text"] == '\'=HYPERLINK("http://x")'  # formula guard
    assert full["unit_type"] == "'\tstudio"
    assert full["sub_source"] == "'@mention"
    assert full["latest_source"] == "'-5"
    assert full["source"] == "'\rcarriage"
    assert full["property_name"] == '\'+Plus, "Quoted" Place'
    assert full["last_name"] == "'-Minus"
    assert full["first_name"] == 'Zoë "Z"'
    assert full["pets_text"] == "two cats,\nno dogs"  # newline inside a quoted cell stays \n
    assert full["pets"] == "false"
    assert rows[0]["pets"] == "true"
    assert rows[2]["pets"] == ""  # NULL
    assert full["lost_reason"] == ""  # empty string, unquoted like NULL
    assert full["bathrooms"] == "1.5"
    assert full["move_in_date"] == "2025-01-02"
    assert full["created_at"] == "2024-03-10T00:30:00Z"  # no microseconds: none printed
    assert full["first_response_at"] == "2024-03-10T01:02:03.000004Z"
    assert full["next_action_due_at"] == "2024-03-11T09:00:00.500000Z"
    assert rows[0]["sub_source"] == "a=b"  # only a leading character is a formula
    assert ',"",' not in body and not body.splitlines()[1].endswith(',""')  # NULL and '' are bare empty cells


async def test_export_applies_the_list_filters_and_order(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ids = await _tricky_leads(sessionmaker, org)
    await insert_leads(sessionmaker, org.org_id, 4, temperature="cold", source="apartments")
    for query, filters in [
        ("?temperature=cold&sort=created_at", LeadFilters(temperature="cold", sort="created_at")),
        ("?source=zillow&sort=-updated_at", LeadFilters(source="zillow", sort="-updated_at")),
        ("?status=new&status=lost", LeadFilters(status=["new", "lost"])),
        ("?q=Renter0", LeadFilters(q="Renter0")),
        ("?q=Zo%C3%AB%20%22Z", LeadFilters(q='Zoë "Z')),
        ("?q=%25%27;--", LeadFilters(q="%';--")),  # quotes and LIKE wildcards are data, not SQL
        ("?q=%241%20o%27neil", LeadFilters(q="$1 o'neil")),  # asyncpg inlines COPY's arguments by $n
    ]:
        body = await _export(client, org, query)
        assert body == await _reference_csv(sessionmaker, org.org_id, filters), query
    cold = list(csv.DictReader(io.StringIO(await _export(client, org, "?temperature=cold"))))
    assert len(cold) == 4 and not {row["id"] for row in cold} & {str(i) for i in ids}


@contextlib.asynccontextmanager
async def _own_app(settings: Settings) -> AsyncIterator[tuple[Any, AsyncEngine]]:
    """An app of the test's own, so its pool counts only this test's connections."""
    from services.api.app import create_app

    application = create_app(settings)
    async with LifespanManager(application) as manager:
        yield manager.app, application.state.guestcard.engine


async def test_a_client_that_stops_reading_gives_the_connection_back(
    settings: Settings, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await insert_leads(sessionmaker, org.org_id, 3000, pets_text="x" * 200)
    async with _own_app(settings) as (app, engine):
        await _disconnect_after_two_chunks(app, engine, org)


async def _disconnect_after_two_chunks(app: Any, engine: AsyncEngine, org: OrgFixture) -> None:
    checked_out = engine.pool.checkedout()
    bodies: list[bytes] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            if len(bodies) == 2:
                raise OSError("client went away")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/v1/leads/export.csv",
        "raw_path": b"/v1/leads/export.csv",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"guestcard.test"), (b"authorization", org.headers["Authorization"].encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("guestcard.test", 443),
    }
    with contextlib.suppress(Exception):  # the disconnect may surface; what matters is the pool below
        await app(scope, receive, send)
    assert len(bodies) == 2 and bodies[0].startswith(b"id,contact_id,")
    assert engine.pool.checkedout() == checked_out


LEADS_TO_CLOSE_EARLY = 6000


class _SignalsWhenFull(asyncio.Queue):  # type: ignore[type-arg]
    """The export's bounded queue, telling the test when the COPY producer has filled it."""

    made: ClassVar[list[_SignalsWhenFull]] = []

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.filled = asyncio.Event()
        self.made.append(self)

    async def put(self, item: Any) -> None:
        await super().put(item)
        if self.full():
            self.filled.set()


async def test_a_generator_closed_early_gives_the_connection_back(
    engine: AsyncEngine,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ~3 MB of CSV: many more socket reads than the queue holds even when a loaded host hands over big ones
    await insert_leads(sessionmaker, org.org_id, LEADS_TO_CLOSE_EARLY, pets_text="y" * 300)
    # only the export module sees the signalling queue
    monkeypatch.setattr(export, "asyncio", SimpleNamespace(**{**vars(asyncio), "Queue": _SignalsWhenFull}))
    checked_out = engine.pool.checkedout()
    stream = export.stream_csv(engine, org.org_id, LeadFilters())
    first = await anext(stream)
    assert first.startswith(b"id,")
    assert engine.pool.checkedout() == checked_out + 1
    # close while the producer is blocked on a full queue: the hard case for giving the connection back
    await asyncio.wait_for(_SignalsWhenFull.made[-1].filled.wait(), timeout=60)
    await stream.aclose()
    assert engine.pool.checkedout() == checked_out
    # the pool still serves working connections afterwards
    rows = list(
        csv.reader(
            io.StringIO("".join([c.decode() async for c in export.stream_csv(engine, org.org_id, LeadFilters())]))
        )
    )
    assert len(rows) == LEADS_TO_CLOSE_EARLY + 1


def test_crlf_only_between_records() -> None:
    chunks = [b'a,"x\n', b'y"\nb,c\n', b'"q""', b'\n"\n']
    out, in_quotes = [], False
    for chunk in chunks:
        data, in_quotes = export.to_crlf(chunk, in_quotes)
        out.append(data)
    assert b"".join(out) == b'a,"x\ny"\r\nb,c\r\n"q""\n"\r\n'
    assert not in_quotes


async def test_user_text_never_enters_the_copy_statement(engine: AsyncEngine, org: OrgFixture) -> None:
    """asyncpg rewrites every `$n` of a COPY's text into an argument's literal, so user text must not be in it."""
    filters = LeadFilters(q="$1' or true --", status=["x$2"], source="$3")
    async with engine.connect() as connection:
        sql, args = export.copy_statement(connection.dialect, org.org_id, filters)
    assert "or true" not in sql and "x$2" not in sql and "'$3'" not in sql
    assert args[0] == org.org_id and "x$2" in args and "$3" in args
    assert any("$1' or true --" in str(arg) for arg in args)
