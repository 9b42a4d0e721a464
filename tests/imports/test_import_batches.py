"""Import batches: matched like intake, dry run = real run, re-import is a no-op, undo restores the rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.imports.jobs import run_import
from shared.clock import FakeClock
from shared.config import Settings
from tests.conftest import OrgFixture

CSV = {"content-type": "text/csv"}
TABLES = ("contacts", "contact_identities", "leads", "lead_events", "review_items")
VOLATILE = {"search_text"}


async def row_sets(sessionmaker: async_sessionmaker[AsyncSession], org_id: uuid.UUID) -> dict[str, set[str]]:
    """Every row of the organization's lead tables, whole, as JSON text."""
    found: dict[str, set[str]] = {}
    async with sessionmaker() as session:
        for table in TABLES:
            rows = await session.execute(
                text(f"SELECT to_jsonb(t) FROM {table} AS t WHERE t.org_id = :org_id"),
                {"org_id": org_id},
            )
            found[table] = {
                json.dumps({k: v for k, v in row[0].items() if k not in VOLATILE}, sort_keys=True) for row in rows
            }
    return found


async def start(client: httpx.AsyncClient, org: OrgFixture, body: str, **params: Any) -> dict[str, Any]:
    response = await client.post("/v1/imports", content=body.encode(), params=params, headers={**org.headers, **CSV})
    assert response.status_code == 202, response.text
    return dict(response.json())


async def finish(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    batch: dict[str, Any],
) -> dict[str, Any]:
    await run_import({"settings": settings, "sessionmaker": sessionmaker, "redis": None}, batch["id"])
    response = await client.get(f"/v1/imports/{batch['id']}", headers=org.headers)
    return dict(response.json())


FILE = """Name,E-mail,Mobile,Lead Source,Move-in Date,Beds,Budget,Notes
Maria Gomez,maria@example.com,(703) 868-3162,Zumper,2027-03-01,2,$1500-$1800,Mornings only
Ana Lopez,ana@example.com,(512) 555-0142,website,,1,,likes the pool
Bob Stone,,(202) 555-0199,zillow,,,,shares a phone with Bo
Zed,not-an-email,,zillow,,,,
Maria Gomez,maria@example.com,(703) 868-3162,Zumper,2027-03-01,2,$1500-$1800,Mornings only
Sam Reed,sam@example.com,(415) 555-0111,website,,,,
"""


async def seed(client: httpx.AsyncClient, org: OrgFixture) -> None:
    """Known renters: Ana (email), and Carla on the phone Bob's row will bring."""
    for body in (
        {"first_name": "Ana", "last_name": "Lopez", "email": "ana@example.com"},
        {"first_name": "Carla", "last_name": "Diaz", "phone": "(202) 555-0199"},
    ):
        assert (await client.post("/v1/leads", json=body, headers=org.headers)).status_code == 201


async def test_dry_run_agrees_reimport_changes_nothing_and_undo_restores(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await seed(client, org)
    before = await row_sets(sessionmaker, org.org_id)

    dry = await finish(client, org, settings, sessionmaker, await start(client, org, FILE, dry_run="true"))
    assert dry["status"] == "done"
    assert await row_sets(sessionmaker, org.org_id) == before  # a dry run writes nothing
    expected = {"created": 2, "attached": 1, "review": 1, "rejected": 1, "unchanged": 1}
    assert dry["counts"] == expected
    assert dry["errors"] == [{"row": 5, "field": "email", "message": "Value error, not a valid email address"}]
    why = {item["row"]: item for item in dry["details"]}
    assert why[3]["outcome"] == "attached" and "email matched an existing contact" in why[3]["reasons"]
    assert why[4]["outcome"] == "review" and any("name differs" in r for r in why[4]["reasons"])
    assert why[6]["outcome"] == "unchanged"

    real = await finish(client, org, settings, sessionmaker, await start(client, org, FILE))
    assert real["counts"] == dry["counts"]
    assert (real["details"], real["errors"]) == (dry["details"], dry["errors"])
    assert (real["total_rows"], real["processed_rows"]) == (6, 6)
    after = await row_sets(sessionmaker, org.org_id)
    assert after != before

    again = await finish(client, org, settings, sessionmaker, await start(client, org, FILE))
    assert again["counts"] == {"created": 0, "attached": 0, "review": 0, "rejected": 1, "unchanged": 5}
    assert await row_sets(sessionmaker, org.org_id) == after  # re-importing changes nothing

    undone = await client.post(f"/v1/imports/{real['id']}/undo", headers=org.headers)
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "undone"
    assert await row_sets(sessionmaker, org.org_id) == before
    twice = await client.post(f"/v1/imports/{real['id']}/undo", headers=org.headers)
    assert twice.status_code == 409


async def test_a_phone_conflict_opens_a_review_item_never_a_silent_attach(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await seed(client, org)
    body = "first_name,last_name,phone\nBob,Stone,202-555-0199\n"
    result = await finish(client, org, settings, sessionmaker, await start(client, org, body))
    assert result["counts"]["review"] == 1
    items = (await client.get("/v1/review-items", headers=org.headers)).json()["items"]
    assert len(items) == 1
    carla = (await client.get("/v1/leads", params={"q": "Carla"}, headers=org.headers)).json()["items"][0]
    bob = (await client.get("/v1/leads", params={"q": "Bob"}, headers=org.headers)).json()["items"][0]
    assert bob["contact_id"] != carla["contact_id"]  # a new person, not attached to the phone's owner
    assert items[0]["contact_id"] == bob["contact_id"]
    assert items[0]["candidate_contact_ids"] == [carla["contact_id"]]
    assert any("name differs" in reason for reason in items[0]["reasons"])


async def test_presets_mapping_and_bad_files(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    knock = "firstName,lastName,email,phone,moveDate,bedrooms,minBudget,maxBudget,sourceTitle,message\n"
    knock += "Jane,Doe,janedoe@example.com,2065550155,2027-01-15,1,1000,2000,Property Website,Any studios?\n"
    done = await finish(client, org, settings, sessionmaker, await start(client, org, knock, preset="knock"))
    assert done["counts"]["created"] == 1 and done["ignored_columns"] == []
    lead = (await client.get("/v1/leads", params={"q": "janedoe"}, headers=org.headers)).json()["items"][0]
    assert (lead["budget_min"], lead["budget_max"], lead["bedrooms"], lead["move_in_date"]) == (
        1000,
        2000,
        1,
        "2027-01-15",
    )

    mapped = "Prospect,Contact No\nKim Lee,(303) 555-0100\n"
    params = {"mapping": json.dumps({"Prospect": "full_name", "Contact No": "phone"})}
    done = await finish(client, org, settings, sessionmaker, await start(client, org, mapped, **params))
    assert done["counts"]["created"] == 1

    exported = await client.get("/v1/leads/export.csv", headers=org.headers)
    other = await client.post(
        "/v1/imports",
        content=exported.content,
        params={"preset": "guestcard", "dry_run": "true"},
        headers={**org.headers, **CSV},
    )
    assert other.status_code == 202
    again = await finish(client, org, settings, sessionmaker, other.json())
    assert again["counts"]["attached"] == 2 and again["counts"]["rejected"] == 0

    bad = await client.post("/v1/imports", content=b"color,size\nred,L\n", headers={**org.headers, **CSV})
    assert bad.status_code == 422
    bad = await client.post(
        "/v1/imports", content=knock.encode(), params={"mapping": '{"x": "shoe_size"}'}, headers={**org.headers, **CSV}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.mapping"


async def test_cli_import_shows_progress_and_lands_a_batch(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings
) -> None:
    import io

    from rich.console import Console

    from services.api.imports.cli import import_file

    output = io.StringIO()
    rows = "".join(f"Renter{n} Test,renter{n}@example.com\n" for n in range(1500))
    assert settings.database_url
    result = await import_file(
        settings.database_url,
        None,
        settings.queue_name,
        ("Name,Email\n" + rows).encode(),
        "leads.csv",
        org.org_id,
        preset="generic",
        mapping={},
        dry_run=False,
        property_id=None,
        console=Console(file=output, width=120, force_terminal=False),
    )
    assert result["counts"]["created"] == 1500
    assert "1500/1500" in output.getvalue() or "1500" in output.getvalue()
    shown = (await client.get(f"/v1/imports/{result['id']}", headers=org.headers)).json()
    assert (shown["status"], shown["filename"], shown["processed_rows"]) == ("done", "leads.csv", 1500)


async def test_an_import_keeps_the_metric_rollups_exact(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Leads arrive 500 to a statement here: the rollup deltas its INSERT trigger adds per statement (grouped
    from the transition table) must equal a recomputation from the raw rows, across timezones and stages."""
    from services.api.metrics.rollups import disagreements

    for name, timezone in (("Harbor", "Asia/Kolkata"), ("Ridge", "America/Los_Angeles")):
        response = await client.post("/v1/properties", json={"name": name, "timezone": timezone}, headers=org.headers)
        assert response.status_code == 201, response.text
    statuses = ["new", "contacted", "toured", "lost", "tour_booked", "leased"]
    lines = ["Name,Email,Property,Lead Source,Status,Lost Reason"]
    for n in range(60):
        prop = ("Harbor", "Ridge", "")[n % 3]
        lines.append(
            f"Renter{n} Person,rollup{n}@example.com,{prop},{('zillow', 'website')[n % 2]},{statuses[n % 6]},price"
        )
    batch = await finish(client, org, settings, sessionmaker, await start(client, org, "\n".join(lines) + "\n"))
    assert batch["counts"]["created"] == 60, batch
    async with sessionmaker() as session:
        assert await disagreements(session, org.org_id) == []


async def test_rows_normalized_in_the_planning_process_read_the_callers_clock(
    client: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    """Chunks after the first are normalized in another process: a move-in date is judged against the
    import's clock there too (2045 is a plan seen from 2040, garbage seen from today's real date)."""
    from services.api.imports.engine import CHUNK

    clock.set(datetime(2040, 1, 1, 12, 0, tzinfo=UTC))
    count = CHUNK + 20
    lines = ["Name,Email,Move-in Date"]
    lines += [f"Renter{n} Later,later{n}@example.com,2045-05-0{1 + n % 9}" for n in range(count)]
    batch = await finish(client, org, settings, sessionmaker, await start(client, org, "\n".join(lines) + "\n"))
    assert batch["counts"]["created"] == count, batch
    async with sessionmaker() as session:
        dates = (
            await session.execute(
                text("SELECT count(*) FROM leads WHERE org_id = :org_id AND move_in_date >= DATE '2045-05-01'"),
                {"org_id": org.org_id},
            )
        ).scalar_one()
    assert dates == count
