"""If-Match per RFC 9110 §13.1.1: strong comparison, `*`, lists, weak tags; only a malformed header is a 422."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import OrgFixture
from tests.leads.helpers import insert_leads


@pytest.mark.parametrize(
    ("if_match", "expected"),
    [
        ('"stale-etag"', 412),  # well formed, not current
        ('"0", "stale"', 412),
        ('W/"1"', 412),  # weak tags never match under the strong comparison
        ('"0", "1"', 200),  # a list matches when any member does
        ('"a,b", "1"', 200),  # a comma inside an opaque tag is allowed
        ("*", 200),
        ("1", 422),  # not an entity-tag: no quotes
        ('"1', 422),
    ],
)
async def test_if_match_follows_the_rfc(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    if_match: str,
    expected: int,
) -> None:
    [lead_id] = await insert_leads(sessionmaker, org.org_id)
    answer = await client.patch(
        f"/v1/leads/{lead_id}", json={"bedrooms": 2}, headers={**org.headers, "If-Match": if_match}
    )
    assert answer.status_code == expected, answer.text
    if expected == 422:
        assert answer.json()["errors"][0]["field"] == "header.If-Match"
    if expected == 412:
        assert answer.headers["content-type"] == "application/problem+json"
