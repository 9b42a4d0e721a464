"""Public intake: `POST /v1/intake/{intake_key}/{kind}`. Stored (committed) before it is acknowledged.

The intake key in the URL names the organization; senders that can sign are also checked against the
secret set with `PUT /v1/integrations/{provider}` and refused with 401 when it is missing or wrong.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.api import ratelimit
from services.api.auth.service import org_id_for_intake_key
from services.api.deps import SessionDep, StateDep
from services.api.intake import service
from services.api.problems import Problem
from shared.enums import InboundKind
from shared.errors import DomainError, NotFound, Unauthorized
from shared.logging import get_logger

log = get_logger(__name__)
router = APIRouter(prefix="/v1/intake", tags=["intake"])

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWILIO_KINDS = frozenset({InboundKind.twilio_voice, InboundKind.twilio_sms})
# Senders that treat only 200 as delivered (intake-formats.md §1.3, §1.4, §3; Twilio wants TwiML);
# SendGrid retries on non-2xx but 200 is what its docs show. Everyone else gets 202 Accepted.
OK_200_KINDS = frozenset(
    {
        InboundKind.mailgun,
        InboundKind.postmark,
        InboundKind.sendgrid,
        InboundKind.zillow,
        InboundKind.ringcentral,
        *TWILIO_KINDS,
    }
)


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
    session: SessionDep,
    state: StateDep,
) -> Response:
    try:
        inbound_kind = InboundKind(kind)
    except ValueError:
        raise NotFound("Unknown intake kind.") from None
    settings = state.settings
    await ratelimit.check(
        state.queue,
        "intake",
        intake_key,
        settings.rate_limit_intake_per_second,
        settings.rate_limit_intake_burst,
    )
    # the whole body, size-checked, before the first query: a slow upload never holds a pooled connection
    body = await service.read_body(
        request, service.body_cap(inbound_kind, settings.email_max_bytes, settings.webhook_max_bytes)
    )
    org_id = await org_id_for_intake_key(session, intake_key)
    if org_id is None:
        raise NotFound("Unknown intake key.")
    if inbound_kind == InboundKind.ringcentral and "validation-token" in request.headers:
        return _ringcentral_handshake(request.headers["validation-token"])
    headers = service.stored_headers(request)
    delivery = service.Delivery(
        kind=inbound_kind,
        body=body,
        content_type=request.headers.get("content-type", ""),
        headers=headers,
        signed_headers=request.headers,
        query=dict(request.query_params),
        url=service.signed_url(settings.public_url, request),
    )
    provider = service.SIGNING_PROVIDER.get(inbound_kind)
    optional = service.OPTIONAL_SIGNING_PROVIDER.get(inbound_kind)
    token = None
    secret = None
    if optional is not None:
        secret = await service.signing_secret(session, org_id, optional)
        provider = optional if secret else None
    elif provider is not None:
        secret = await service.signing_secret(session, org_id, provider)
    if provider is not None:
        try:
            token = service.verify(delivery, secret, service.now())
        except Unauthorized:
            log.info("intake.signature_refused", org_id=str(org_id), kind=inbound_kind.value)
            raise
    key = service.compute_key(delivery)
    if token:
        await service.refuse_replayed_token(state.queue, org_id, token, key)
    stored = await service.store(session, org_id, delivery, key)
    log.info(
        "intake.stored",
        org_id=str(org_id),
        inbound_id=str(stored.inbound_id),
        kind=inbound_kind.value,
        created=stored.created,
        size=len(body),
    )
    return _acknowledge(inbound_kind, stored.inbound_id)


def _acknowledge(kind: InboundKind, inbound_id: uuid.UUID) -> Response:
    headers = {"X-Inbound-Id": str(inbound_id)}
    if kind in TWILIO_KINDS:
        return Response(TWIML_EMPTY, status_code=200, media_type="text/xml", headers=headers)
    status = 200 if kind in OK_200_KINDS else 202
    return JSONResponse({"inbound_id": str(inbound_id)}, status_code=status, headers=headers)


def _ringcentral_handshake(token: str) -> Response:
    """Subscription set-up: echo the token within 3 s, store nothing (RingCentral wants a tiny 200)."""
    if not token or len(token) > 512 or not token.isprintable():
        raise DomainError("The Validation-Token header is not usable.")
    return Response(status_code=200, headers={"Validation-Token": token})
