from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads, insert_property

SHARED = ["id", "contact_id", "first_name", "last_name", "email", "phone", "kind", "property_id", "status"]
SHARED += ["status_label", "temperature", "source", "owner_id", "bedrooms", "budget_min", "budget_max", "pets"]
MOMENTS = ["created_at", "updated_at", "first_response_at"]


def _same(api: Any, cell: str) -> bool:
    if api is None:
        return cell == ""
    if isinstance(api, bool):
        return cell == str(api).lower()
    return str(api) == cell


async def test_export_of_ten_thousand_matches_the_list(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    property_id = await insert_property(sessionmaker, org.org_id, "=Oak Park")
    await insert_leads(
        sessionmaker,
        org.org_id,
        10_000,
        property_id=property_id,
        owner_id=org.admin_user_id,
        bedrooms=2,
        budget_max=1900,
        pets=True,
    )
    listed: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = "/v1/leads?limit=500" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=org.headers)).json()
        listed += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    assert len(listed) == 10_000

    async with client.stream("GET", "/v1/leads/export.csv", headers=org.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        text = "".join([chunk async for chunk in response.aiter_text()])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["id"] for row in rows] == [item["id"] for item in listed]
    for item, row in zip(listed, rows, strict=True):
        for key in SHARED:
            assert _same(item[key], row[key]), (key, item[key], row[key])
        for key in MOMENTS:
            expected = item[key] and datetime.fromisoformat(item[key])
            assert (datetime.fromisoformat(row[key]) if row[key] else None) == expected, key
    assert rows[0]["property_name"] == "'=Oak Park"  # neutralized for spreadsheets
    assert rows[0]["owner_name"] == "Admin"


async def test_export_uses_the_list_filters(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await insert_leads(sessionmaker, org.org_id, 5)
    cold = await insert_leads(sessionmaker, org.org_id, 3, temperature="cold")
    response = await client.get("/v1/leads/export.csv?temperature=cold&sort=created_at", headers=org.headers)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["id"] for row in rows] == [str(lead_id) for lead_id in cold]
    foreign = await client.get("/v1/leads/export.csv", headers=other_org.headers)
    assert list(csv.DictReader(io.StringIO(foreign.text))) == []
