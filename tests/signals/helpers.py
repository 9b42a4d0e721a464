"""Building signal envelopes the way the intake worker sends them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.enums import MatchVerdict

SERVICE_HEADERS = {"Authorization": "Bearer test-service-token"}


def envelope(
    org_id: uuid.UUID,
    *,
    email: str | None = None,
    phone: str | None = None,
    first_name: str | None = "Dana",
    last_name: str | None = "Reyes",
    event: str = "inquiry",
    channel: str = "email",
    source: str = "zillow",
    property_id: uuid.UUID | None = None,
    preferences: dict[str, Any] | None = None,
    message: str | None = "Is it still available?",
    verdict: str = MatchVerdict.new,
    contact_id: uuid.UUID | None = None,
    reasons: list[str] | None = None,
    candidates: list[dict[str, Any]] | None = None,
    inbound_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
    reply_to: str | None = None,
    agent_hint: str | None = None,
) -> dict[str, Any]:
    body = {
        "inbound_id": str(inbound_id or uuid.uuid4()),
        "org_id": str(org_id),
        "signal": {
            "event": event,
            "channel": channel,
            "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
            "contact": {
                "first_name": first_name,
                "last_name": last_name,
                "email": email,
                "phone": phone,
                "reply_to": reply_to,
            },
            "source": {"source": source},
            "property": {"property_id": str(property_id) if property_id else None},
            "preferences": preferences or {},
            "message": message,
            **({"agent_hint": agent_hint} if agent_hint else {}),
        },
        "match": {
            "verdict": verdict,
            "contact_id": str(contact_id) if contact_id else None,
            "candidates": candidates or [],
            "reasons": reasons or [],
        },
    }
    return body


async def post_signal(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/internal/signals", json=body, headers=SERVICE_HEADERS)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def deliver(client: httpx.AsyncClient, sessionmaker: Any, org_id: Any, **fields: Any) -> dict[str, Any]:
    """What the intake worker does after parsing: match (with the org's blocklist), then hand over."""
    from services.intake.matching import match_signal
    from shared.blocklist import blocked_identities
    from shared.schemas.signal import LeadSignal

    body = envelope(org_id, **fields)
    signal = LeadSignal.model_validate(body["signal"])
    async with sessionmaker() as session:
        match = await match_signal(session, org_id, signal, await blocked_identities(session, org_id))
    body["match"] = match.model_dump(mode="json")
    outcome = await post_signal(client, body)
    outcome["match"] = body["match"]
    return outcome
