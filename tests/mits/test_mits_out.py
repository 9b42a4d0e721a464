"""MITS out: a lead rendered as a MITS guest card and posted to the intake `mits` kind of another
organization comes back as the same lead (every field MITS carries)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree as SafeET

from shared.config import Settings
from shared.enums import InboundKind
from tests.conftest import OrgFixture
from tests.intake.test_intake_support import PUBLIC_URL, SERVICE_TOKEN, intake_path
from tests.intake.test_pipeline_e2e import run_burst_worker

ROUND_TRIP_FIELDS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "move_in_date",
    "bedrooms",
    "bathrooms",
    "budget_min",
    "budget_max",
    "unit_type",
    "source",
]


@pytest.fixture
async def service_api(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=PUBLIC_URL,
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    ) as api:
        yield api


async def test_mits_round_trip_through_intake_returns_the_same_lead_fields(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,
    org: OrgFixture,
    other_org: OrgFixture,
    settings: Settings,
) -> None:
    body = {
        "first_name": "Greta",
        "last_name": "Lindqvist",
        "email": "greta.lindqvist@example.com",
        "phone": "(703) 868-3162",
        "move_in_date": "2026-08-01",
        "bedrooms": 2,
        "bathrooms": 1.5,
        "budget_min": 1800,
        "budget_max": 2400,
        "unit_type": "B2 Corner",
        "source": "zillow",
    }
    created = await client.post("/v1/leads", json=body, headers=org.headers)
    assert created.status_code == 201, created.text
    lead = created.json()

    response = await client.get(f"/v1/leads/{lead['id']}/mits", headers=org.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = SafeET.fromstring(response.content)
    assert root.tag.endswith("LeadManagement")

    posted = await client.post(
        intake_path(other_org, InboundKind.mits), content=response.content, headers={"Content-Type": "application/xml"}
    )
    assert posted.status_code in (200, 202), posted.text
    await run_burst_worker(settings, service_api)
    leads = (await client.get("/v1/leads", headers=other_org.headers)).json()["items"]
    assert len(leads) == 1
    back = leads[0]
    assert {key: back[key] for key in ROUND_TRIP_FIELDS} == {key: lead[key] for key in ROUND_TRIP_FIELDS}


async def test_batch_form_and_scoping(client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture) -> None:
    ids = []
    for name in ("Ana", "Ben"):
        made = await client.post(
            "/v1/leads", json={"first_name": name, "email": f"{name.lower()}@example.com"}, headers=org.headers
        )
        ids.append(made.json()["id"])
    batch = await client.get("/v1/leads/mits", params=[("id", i) for i in ids], headers=org.headers)
    assert batch.status_code == 200
    root = SafeET.fromstring(batch.content)
    names = [el.text for el in root.iter() if el.tag.endswith("FirstName")]
    assert names == ["Ana", "Ben"]
    hidden = await client.get(f"/v1/leads/{ids[0]}/mits", headers=other_org.headers)
    assert hidden.status_code == 404
