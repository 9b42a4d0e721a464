"""/dashboard without a browser: sign-in paths and the same numbers as the API (the browser test is in
tests_browser/)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from services.api.metrics.cli import make_dashboard_link
from tests.conftest import OrgFixture


def _values(page: str) -> dict[str, str]:
    return dict(re.findall(r"data-metric='([^']+)' data-value='([^']*)'", page))


async def test_signed_in_by_key_the_page_shows_the_api_numbers(client: httpx.AsyncClient, org: OrgFixture) -> None:
    for email, source in (("a@example.com", "zillow"), ("b@example.com", "zillow"), ("c@example.com", "website")):
        created = await client.post("/v1/leads", json={"email": email, "source": source}, headers=org.headers)
        assert created.status_code == 201
    anonymous = await client.get("/dashboard")
    assert anonymous.status_code == 200 and "API key" in anonymous.text and "data-metric" not in anonymous.text
    wrong = await client.post("/dashboard/login", data={"api_key": "gck_nope"})
    assert wrong.status_code == 401
    login = await client.post("/dashboard/login", data={"api_key": org.api_key})
    assert login.status_code == 303
    cookie = login.cookies["gc_dashboard"]
    page = await client.get("/dashboard", cookies={"gc_dashboard": cookie})
    assert page.status_code == 200
    assert "script" not in page.text.lower()
    values = _values(page.text)
    window = re.search(r"data-from='([^']+)' data-to='([^']+)'", page.text)
    assert window
    api = (
        await client.get("/v1/metrics/funnel", params={"from": window[1], "to": window[2]}, headers=org.headers)
    ).json()
    rows = {row["key"]: row for row in api["rows"]}
    assert values["funnel.zillow.leads"] == str(rows["zillow"]["leads"]) == "2"
    assert values["funnel.total.leads"] == "3"


async def test_a_signed_link_opens_the_dashboard_and_expires(
    client: httpx.AsyncClient, org: OrgFixture, clock: Any, settings: Any
) -> None:
    link = make_dashboard_link(org.org_id, 10, "https://guestcard.test", settings)
    opened = await client.get(link.removeprefix("https://guestcard.test"))
    assert opened.status_code == 303 and "token" not in opened.headers["location"]
    page = await client.get("/dashboard", cookies={"gc_dashboard": opened.cookies["gc_dashboard"]})
    assert "Funnel by source" in page.text
    clock.advance(minutes=11)
    late = await client.get(link.removeprefix("https://guestcard.test"))
    assert late.status_code == 401
