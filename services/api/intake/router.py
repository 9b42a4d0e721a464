"""Public intake: `POST /v1/intake/{intake_key}/{kind}`. Stored (committed) before it is acknowledged.

The intake key in the URL names the organization; senders that can sign are also checked against the
secret set with `PUT /v1/integrations/{provider}` and refused with 401 when it is missing or wrong.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from services.api.deps import StateDep
from services.api.intake import service
from services.api.problems import Problem
from shared.enums import InboundKind
from shared.errors import NotFound

router = APIRouter(prefix="/v1/intake", tags=["intake"])


class IntakeAccepted(BaseModel):
    inbound_id: uuid.UUID


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem, "content": {"application/problem+json": {}}}


@router.post(
    "/{intake_key}/{kind:path}",
    status_code=202,
    response_model=IntakeAccepted,
    summary="Receive one delivery from a lead sender",
    description=(
        "`kind`: " + ", ".join(f"`{kind.value}`" for kind in InboundKind) + ". The raw body is stored as sent "
        "and processed asynchronously; the same delivery again returns the same `inbound_id`. Twilio kinds "
        "get 200 with empty TwiML; mailgun, postmark, sendgrid, zillow and ringcentral get 200; others 202. "
        "Every success carries `X-Inbound-Id`. See docs/intake.md."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        200: {"description": "Stored (senders that need 200; Twilio: empty TwiML `text/xml`)"},
        413: _problem("Body over the size cap"),
        429: _problem("Over the intake key's rate limit; retry after `Retry-After` seconds"),
        503: _problem("Replay protection (Mailgun) unavailable; the sender retries"),
    },
)
async def receive(
    request: Request,
    intake_key: Annotated[str, Path(max_length=200)],
    kind: Annotated[str, Path(description="sender kind, e.g. `email`, `twilio/sms`")],
    state: StateDep,
) -> Response:
    """Reached for what the fast path (services/api/intake/fast.py) hands on: the same `service.accept`."""
    try:
        inbound_kind = InboundKind(kind)
    except ValueError:
        raise NotFound("Unknown intake kind.") from None
    return await service.accept(state, request, intake_key, inbound_kind)
