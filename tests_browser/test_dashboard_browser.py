"""Load /dashboard in chromium from a signed link, change the property filter, check the numbers against the
API for the same window and property."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright

from services.api.metrics.cli import make_dashboard_link
from shared.config import Settings
from tests.conftest import make_org


async def _seed(base: str, headers: dict[str, str]) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base, headers=headers) as http:
        props = {}
        for name, zone in (("Harbor", "America/New_York"), ("Summit", "America/Los_Angeles")):
            response = await http.post("/v1/properties", json={"name": name, "timezone": zone})
            assert response.status_code == 201, response.text
            props[name] = response.json()["id"]
        plan = [
            ("Harbor", "zillow", "leased"),
            ("Harbor", "zillow", "toured"),
            ("Harbor", "website", None),
            ("Summit", "zillow", None),
            ("Summit", "apartments", "toured"),
            ("Summit", "apartments", None),
            ("Summit", "website", "contacted"),
        ]
        for i, (prop, source, status) in enumerate(plan):
            created = await http.post(
                "/v1/leads",
                json={
                    "email": f"r{i}-{uuid.uuid4().hex[:6]}@example.com",
                    "property_id": props[prop],
                    "source": source,
                },
            )
            assert created.status_code == 201, created.text
            lead = created.json()["id"]
            steps = {
                "leased": ["toured", "application_started", "application_submitted", "leased"],
                "toured": ["toured"],
                "contacted": ["contacted"],
                None: [],
            }[status]
            for step in steps:
                moved = await http.post(f"/v1/leads/{lead}/status", json={"status": step})
                assert moved.status_code == 200, moved.text
        await http.put("/v1/sources/zillow/spend", json={"month": "2026-11", "amount": 500})
        return props


async def _shown(page: Page) -> dict[str, str]:
    cells = await page.eval_on_selector_all(
        "[data-metric]", "cells => cells.map(c => [c.dataset.metric, c.dataset.value])"
    )
    return {metric: value for metric, value in cells}


async def _api(base: str, headers: dict[str, str], window: dict[str, Any], path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, headers=headers) as http:
        response = await http.get(f"/v1/metrics/{path}", params=window)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _num(value: Any) -> str:
    return "" if value is None else str(value)


async def _check_against_api(page: Page, base: str, headers: dict[str, str]) -> dict[str, str]:
    shown = await _shown(page)
    window_el = page.locator("#window")
    window = {"from": await window_el.get_attribute("data-from"), "to": await window_el.get_attribute("data-to")}
    chosen = await window_el.get_attribute("data-property")
    if chosen:
        window["property_id"] = chosen
    funnel = await _api(base, headers, window, "funnel")
    for row in funnel["rows"]:
        for name in ("leads", "contacted", "toured", "applied", "leased", "lead_to_tour_rate", "lead_to_lease_rate"):
            assert shown[f"funnel.{row['key']}.{name}"] == _num(row[name]), (row["key"], name)
    assert shown["funnel.total.leads"] == str(funnel["totals"]["leads"])
    [speed] = (await _api(base, headers, window, "response-time"))["rows"]
    for kind in ("automated", "human", "first"):
        assert shown[f"speed.{kind}.responded"] == str(speed[kind]["responded"])
    attribution = await _api(base, headers, window, "attribution")
    for row in attribution["rows"]:
        for name in ("leads", "tours", "leases", "spend", "cost_per_lead", "cost_per_lease"):
            assert shown[f"attribution.{row['key']}.{name}"] == _num(row[name]), (row["key"], name)
    health = (await _api(base, headers, window, "health"))["totals"]
    for name in ("open_leads", "no_owner", "no_next_action", "overdue_next_action", "sla_breaches", "review_open"):
        assert shown[f"health.{name}"] == _num(health[name]), name
    return shown


async def test_dashboard_in_chromium_matches_the_api(
    live_server: str, settings: Settings, sessionmaker: Any, chromium_path: str
) -> None:
    org = await make_org(sessionmaker, "Browser Org")
    props = await _seed(live_server, org.headers)
    link = make_dashboard_link(org.org_id, 10, live_server, settings)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(link)
            assert "token=" not in page.url  # the link moved into a cookie
            everything = await _check_against_api(page, live_server, org.headers)
            assert everything["funnel.total.leads"] == "7"
            await page.select_option("#property", props["Summit"])
            await page.click("#apply")
            await page.wait_for_load_state()
            assert await page.locator("#window").get_attribute("data-property") == props["Summit"]
            summit = await _check_against_api(page, live_server, org.headers)
            assert summit["funnel.total.leads"] == "4"
            assert summit["funnel.apartments.toured"] == "1"
            assert "funnel.website.leads" in summit and summit["funnel.total.leased"] == "0"
        finally:
            await browser.close()
