"""Search answers the same whether it fetches leads by the matching contacts or walks leads newest first."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.leads import queries
from tests.conftest import OrgFixture
from tests.signals.helpers import deliver


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


@pytest.mark.parametrize("q", ["harper", "Harper Q", "(415) 555-01", "+1415555", "nobody-here"])
async def test_capped_contact_list_and_walking_leads_agree(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    q: str,
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
    by_contacts = await _ids(client, org, q)
    by_contacts_oldest_first = await _ids(client, org, q, sort="created_at")
    monkeypatch.setattr(queries, "SEARCH_CANDIDATES", 2)  # every real match count now exceeds the cap
    walking = await _ids(client, org, q)
    walking_oldest_first = await _ids(client, org, q, sort="created_at")
    assert by_contacts == walking
    assert by_contacts_oldest_first == walking_oldest_first
    assert len(by_contacts) == (0 if q == "nobody-here" else 5)
