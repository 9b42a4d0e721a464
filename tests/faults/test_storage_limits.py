"""No lead is lost to a storage limit: over-long values are cut to their columns with a note on the
timeline, the raw payload keeps everything, and neither the intake endpoint nor the signal API refuses a
signal for a length. Through the real path: intake endpoint → PostgreSQL → Redis → worker → API."""

from __future__ import annotations

import json
import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import Settings
from shared.delivery_keys import DELIVERY_KEY_MAX, delivery_key
from shared.limits import columns_of, fit_value
from shared.models import Contact, InboundMessage, Lead, LeadEvent
from tests.conftest import OrgFixture
from tests.intake.test_pipeline_e2e import run_burst_worker, service_api  # noqa: F401 - fixture

LONG_UNIT = "Two bedroom loft with den, " * 10  # 270 characters; leads.unit_type is 100
LONG_FIRST = "Maximiliana" * 20  # 220; contacts.first_name is 150
LONG_UTM = "newsletter-" * 30  # 330; leads.sub_source is 200


async def test_a_form_with_over_long_values_becomes_a_lead_with_a_note(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,  # noqa: F811
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    form = {
        "first_name": LONG_FIRST,
        "last_name": "Okonkwo-Villanueva" * 10,
        "email": f"long.{uuid.uuid4().hex[:8]}@example.com",
        "unit_type": LONG_UNIT,
        "pets": "a very good dog " * 30,
        "utm_source": LONG_UTM,
        "message": "Is the loft available?",
        "submission_id": "s-" + "x" * 295,  # a sender id as long as the delivery key column
    }
    response = await client.post(f"/v1/intake/{org.intake_key}/web-form", json=form)
    assert response.status_code == 202, response.text
    inbound_id = uuid.UUID(response.json()["inbound_id"])
    await run_burst_worker(settings, service_api)

    async with sessionmaker() as session:
        row = await session.get(InboundMessage, inbound_id)
        assert row is not None
        assert row.status == "processed", row.reason
        assert json.loads(row.body) == form  # the raw payload keeps everything
        lead = await session.get(Lead, row.lead_id)
        contact = await session.get(Contact, row.contact_id)
        touch = await session.scalar(
            select(LeadEvent).where(LeadEvent.inbound_id == inbound_id, LeadEvent.actor_type == "renter")
        )
    assert lead is not None and contact is not None and touch is not None
    assert lead.unit_type == LONG_UNIT[:100]
    assert lead.sub_source == LONG_UTM[:200]
    assert contact.first_name == LONG_FIRST[:150]
    assert contact.full_name is not None and len(contact.full_name) <= 300
    assert set(touch.data["truncated"]) >= {
        "contact.first_name",
        "contact.last_name",
        "preferences.unit_type",
        "preferences.pets_text",
        "source.sub_source",
    }
    assert touch.data["preferences"]["unit_type"] == LONG_UNIT[:100]
    timeline = await client.get(f"/v1/leads/{lead.id}/timeline", headers=org.headers)
    assert timeline.status_code == 200, timeline.text
    assert "truncated" in timeline.text


async def test_the_signal_api_never_refuses_a_length(client: httpx.AsyncClient, org: OrgFixture) -> None:
    from tests.signals.helpers import SERVICE_HEADERS, envelope

    body = envelope(org.org_id, email=f"x.{uuid.uuid4().hex[:8]}@example.com", source="s" * 500)
    body["signal"]["preferences"] = {"unit_type": "u" * 5000, "bathrooms": 1000.5, "budget_max": 10**12}
    body["signal"]["contact"]["last_name"] = "L" * 1000
    response = await client.post("/v1/internal/signals", json=body, headers=SERVICE_HEADERS)
    assert response.status_code == 200, response.text


def test_values_fit_their_columns_generically() -> None:
    lead = columns_of(Lead)
    assert fit_value(lead["unit_type"], "u" * 101) == ("u" * 100, True)
    assert fit_value(lead["unit_type"], "u" * 100) == ("u" * 100, False)
    assert fit_value(lead["budget_max"], 2**31) == (None, True)
    assert fit_value(lead["budget_max"], 4500) == (4500, False)
    assert fit_value(lead["bathrooms"], 100.0) == (None, True)  # Numeric(3, 1)
    assert fit_value(lead["bathrooms"], 99.5) == (99.5, False)
    assert fit_value(lead["pets"], True) == (True, False)
    key = delivery_key("web-form", b"{}", "application/json", {"idempotency-key": "k" * 295})
    assert len(key) <= DELIVERY_KEY_MAX
