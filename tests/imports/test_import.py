from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import Contact, Lead, LeadEvent
from tests.conftest import OrgFixture
from tests.signals.helpers import deliver

CSV_HEADERS = {"content-type": "text/csv"}


async def _import(client: httpx.AsyncClient, org: OrgFixture, text: str, **params: str) -> httpx.Response:
    return await client.post(
        "/v1/leads/import", content=text.encode(), params=params, headers={**org.headers, **CSV_HEADERS}
    )


async def _count(sessionmaker: async_sessionmaker[AsyncSession], model: type, org_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(model.org_id == org_id)) or 0)  # type: ignore[attr-defined]


SPREADSHEET = """Name,E-mail,Mobile,Property,Lead Source,Move-in Date,Beds,Budget,Pets,Notes,Favorite Color
Maria Gomez,Maria.Gomez@Example.COM,(703) 868-3162,Cedar Court,Zumper,2027-03-01,2,$1500-$1800,yes,Mornings only,blue
Tom Yu,not-an-email,,Cedar Court,Zillow,,Studio,,no,,green
Priya Shah,priya@example.com,512.555.0142,Nowhere Towers,website,,,,,,red
Lee Park,lee@example.com,,,,ASAP,3,,,,
"""


async def test_rows_land_bad_rows_are_reported_and_reimport_creates_nothing(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert (await client.post("/v1/properties", json={"name": "Cedar Court"}, headers=org.headers)).status_code == 201
    response = await _import(client, org, SPREADSHEET)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["created"], report["attached"], report["failed"]) == (4, 2, 0, 2)
    assert report["ignored_columns"] == ["Favorite Color"]
    errors = {(error["row"], error["field"]) for error in report["errors"]}
    assert (3, "email") in errors
    assert (4, "property") in errors

    leads = {}
    for lead_id in report["lead_ids"]:
        body = (await client.get(f"/v1/leads/{lead_id}", headers=org.headers)).json()
        leads[body["email"]] = body
    maria = leads["maria.gomez@example.com"]
    assert (maria["first_name"], maria["phone"], maria["source"], maria["bedrooms"]) == (
        "Maria",
        "+17038683162",
        "zumper",
        2,
    )
    assert (maria["budget_min"], maria["budget_max"], maria["pets"], maria["move_in_date"]) == (
        1500,
        1800,
        True,
        "2027-03-01",
    )
    lee = leads["lee@example.com"]
    assert (lee["move_in_date"], lee["move_in_text"], lee["source"]) == (None, "ASAP", "import")
    timeline = (await client.get(f"/v1/leads/{maria['id']}/timeline", headers=org.headers)).json()["items"]
    assert any(event["type"] == "note" and event["data"]["body"] == "Mornings only" for event in timeline)

    again = (await _import(client, org, SPREADSHEET)).json()
    assert (again["created"], again["attached"], again["failed"]) == (0, 2, 2)
    assert await _count(sessionmaker, Contact, org.org_id) == 2


async def test_a_renter_known_from_intake_is_attached_not_duplicated(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    known = await deliver(client, sessionmaker, org.org_id, email="known@example.com", phone="(646) 555-0142")
    report = (
        await _import(client, org, "first_name,last_name,phone,status\nKim,Known,646.555.0142,qualified\n")
    ).json()
    assert (report["created"], report["attached"]) == (0, 1)
    assert report["lead_ids"] == [known["lead_id"]]
    assert await _count(sessionmaker, Contact, org.org_id) == 1


async def test_status_column_moves_new_leads_through_the_pipeline_rules(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    report = (
        await _import(
            client, org, "email,status\na@example.com,Tour Booked\nb@example.com,leased\nc@example.com,sleeping\n"
        )
    ).json()
    assert report["created"] == 1
    problems = {(error["row"], error["field"]) for error in report["errors"]}
    assert problems == {(3, "status"), (4, "status")}
    assert "Allowed from new" in next(error["message"] for error in report["errors"] if error["row"] == 3)
    lead = (await client.get(f"/v1/leads/{report['lead_ids'][0]}", headers=org.headers)).json()
    assert lead["status"] == "tour_booked"


async def test_dry_run_reports_and_saves_nothing(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    report = (await _import(client, org, "email\none@example.com\ntwo@example.com\n", dry_run="true")).json()
    assert (report["dry_run"], report["created"]) == (True, 2)
    assert await _count(sessionmaker, Lead, org.org_id) == 0
    assert await _count(sessionmaker, LeadEvent, org.org_id) == 0


async def test_unusable_files_are_field_errors(client: httpx.AsyncClient, org: OrgFixture) -> None:
    no_columns = await _import(client, org, "color,size\nred,L\n")
    assert no_columns.status_code == 422
    assert no_columns.json()["errors"][0]["field"] == "body"
    empty = await _import(client, org, "")
    assert empty.status_code == 422
    semicolons = await _import(client, org, "email;phone\nsemi@example.com;7038683162\n")
    assert semicolons.json()["created"] == 1
    lone_cr = await _import(client, org, "(\r\u0086")  # schemathesis: was a 500 (csv.Error)
    assert lone_cr.status_code == 422
    huge_field = await _import(client, org, 'email\n"' + "x" * 200_000 + '"\n')
    assert huge_field.status_code == 422 and huge_field.json()["errors"][0]["field"] == "body"


async def test_import_racing_intake_for_the_same_renter_makes_one_contact(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    csv_text = "email,phone\n" + "".join(f"racer{i}@example.com,(512) 555-{i:04d}\n" for i in range(10))
    signals = [
        deliver(client, sessionmaker, org.org_id, email=f"RACER{i}@example.com", phone=f"512555{i:04d}")
        for i in range(10)
    ]
    results = await asyncio.gather(_import(client, org, csv_text), *signals)
    assert results[0].status_code == 200
    assert await _count(sessionmaker, Contact, org.org_id) == 10


async def test_agents_cannot_import(client: httpx.AsyncClient, org: OrgFixture) -> None:
    key = (await client.post("/v1/api-keys", json={"name": "agent", "role": "agent"}, headers=org.headers)).json()[
        "key"
    ]
    response = await client.post(
        "/v1/leads/import", content=b"email\nx@example.com\n", headers={"Authorization": f"Bearer {key}", **CSV_HEADERS}
    )
    assert response.status_code == 403
