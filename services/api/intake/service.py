"""Intake hot path: size cap, sender authentication, then one idempotent insert into the inbox.

Per request: one organization lookup, one secret lookup (signing senders only), one insert. Parsing waits
for the worker; nothing here reads the payload beyond what a signature or the delivery key needs.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.intake import signatures
from shared import clock
from shared.delivery_keys import delivery_key
from shared.enums import InboundKind
from shared.errors import PayloadTooLarge, Unauthorized, Unavailable
from shared.formdata import decode_multipart, media_type
from shared.models import InboundMessage, Integration
from shared.queue import enqueue_after_commit

EMAIL_KINDS = frozenset({InboundKind.email, InboundKind.sendgrid, InboundKind.mailgun, InboundKind.postmark})
# Senders that sign their requests, and the `integrations.provider` row holding their secret.
SIGNING_PROVIDER: dict[InboundKind, str] = {
    InboundKind.twilio_voice: "twilio",
    InboundKind.twilio_sms: "twilio",
    InboundKind.mailgun: "mailgun",
    InboundKind.callrail: "callrail",
    InboundKind.webflow: "webflow",
    InboundKind.ringcentral: "ringcentral",
}
# Senders whose check is opt-in: checked (fail-closed) once the organization sets it, else the secret intake
# key alone authenticates them. SendGrid: the security policy's public key; Postmark: `user:password` of the
# basic auth written into the webhook URL.
OPTIONAL_SIGNING_PROVIDER: dict[InboundKind, str] = {
    InboundKind.sendgrid: "sendgrid",
    InboundKind.postmark: "postmark",
}
# Never stored: credentials, and RingCentral's verification token (it *is* the shared secret).
DROPPED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "verification-token"})
SIGNATURE_MAX_AGE = 300
MAILGUN_TOKEN_TTL = 2 * SIGNATURE_MAX_AGE


@dataclass(frozen=True, slots=True)
class Stored:
    inbound_id: uuid.UUID
    created: bool


def body_cap(kind: InboundKind, email_max: int, webhook_max: int) -> int:
    return email_max if kind in EMAIL_KINDS else webhook_max


async def read_body(request: Request, cap: int) -> bytes:
    """The raw bytes, refused with 413 past `cap`: early on Content-Length, else while streaming."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > cap:
            raise PayloadTooLarge(f"The body is larger than {cap} bytes.")
        body = await request.body()
        if len(body) > cap:  # the server enforces framing; this is belt and braces
            raise PayloadTooLarge(f"The body is larger than {cap} bytes.")
        return body
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise PayloadTooLarge(f"The body is larger than {cap} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def signing_secret(session: AsyncSession, org_id: uuid.UUID, provider: str) -> str | None:
    secret: str | None = await session.scalar(
        select(Integration.signing_secret).where(Integration.org_id == org_id, Integration.provider == provider)
    )
    return secret


def _form_fields(body: bytes, content_type: str) -> dict[str, list[str]]:
    if media_type(content_type) == "multipart/form-data":
        try:
            return {key: [value] for key, value in decode_multipart(body, content_type).items()}
        except Exception:  # malformed multipart: no fields, so the signature check fails closed
            return {}
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def signed_url(public_url: str | None, request: Request) -> str:
    """The URL the sender called, as it saw it: the configured public base (proxies rewrite ours)."""
    base = (public_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class Delivery:
    kind: InboundKind
    body: bytes
    content_type: str
    headers: Mapping[str, str]  # as stored: lower-cased names, credentials dropped
    signed_headers: Mapping[str, str]  # as received (signature and token headers live here)
    query: Mapping[str, str]
    url: str


def verify(delivery: Delivery, secret: str | None, now: float) -> str | None:
    """Check the sender's signature; raise 401 when it is missing or wrong. Returns Mailgun's token."""
    if not secret:
        raise Unauthorized("No signing secret is configured for this sender; set it with PUT /v1/integrations.")
    kind, headers, body = delivery.kind, delivery.signed_headers, delivery.body
    token: str | None = None
    if kind in (InboundKind.twilio_voice, InboundKind.twilio_sms):
        params = _form_fields(body, delivery.content_type)  # ignored when the URL carries bodySHA256
        ok = signatures.twilio_valid(delivery.url, params, secret, headers.get("x-twilio-signature"), body)
    elif kind == InboundKind.mailgun:
        fields = _form_fields(body, delivery.content_type)
        timestamp, token, signature = (fields.get(name, [""])[-1] for name in ("timestamp", "token", "signature"))
        ok = signatures.mailgun_valid(secret, timestamp, token, signature, now, SIGNATURE_MAX_AGE)
    elif kind == InboundKind.callrail:
        ok = signatures.callrail_valid(secret, body, headers.get("signature"))
    elif kind == InboundKind.webflow:
        ok = signatures.webflow_valid(
            secret, headers.get("x-webflow-timestamp", ""), body, headers.get("x-webflow-signature"), now
        )
    elif kind == InboundKind.ringcentral:
        ok = signatures.ringcentral_valid(secret, headers.get("verification-token"))
    elif kind == InboundKind.sendgrid:
        ok = signatures.sendgrid_valid(
            secret,
            headers.get("x-twilio-email-event-webhook-timestamp"),
            body,
            headers.get("x-twilio-email-event-webhook-signature"),
            now,
            SIGNATURE_MAX_AGE,
        )
    elif kind == InboundKind.postmark:
        ok = signatures.basic_auth_valid(secret, headers.get("authorization"))
    else:  # pragma: no cover - only signing kinds reach here
        ok = False
    if not ok:
        raise Unauthorized("The request signature is missing, stale or wrong.")
    return token


async def refuse_replayed_token(redis: Redis | None, org_id: uuid.UUID, token: str, key: str) -> None:
    """Mailgun signs only timestamp+token, not the body: a captured signature could carry another body.

    The first use of a token claims it for its delivery key; the same token with the same delivery (a
    retry) passes, with any other delivery it is refused. No Redis = cannot tell = refuse (503, retried).
    """
    if redis is None:
        raise Unavailable("Replay protection is unavailable; retry later.")
    name = f"guestcard:mailgun-token:{org_id}:{hashlib.sha256(token.encode()).hexdigest()}"
    try:
        if await redis.set(name, key, nx=True, ex=MAILGUN_TOKEN_TTL):
            return
        claimed = await redis.get(name)
    except Exception as error:
        raise Unavailable("Replay protection is unavailable; retry later.") from error
    claimed_key = claimed.decode() if isinstance(claimed, bytes) else claimed
    if claimed_key != key:
        raise Unauthorized("This Mailgun token was already used for another message.")


def stored_headers(request: Request) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in request.headers.items():  # already lower-cased; repeated names are joined
        if name in DROPPED_HEADERS:
            continue
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


def compute_key(delivery: Delivery) -> str:
    return delivery_key(delivery.kind, delivery.body, delivery.content_type, delivery.headers, delivery.query)


# One statement stores a delivery: insert it, or (a redelivery) find the first row. The fallback SELECT below
# is only for a twin committed after this statement's snapshot was taken.
STORE_SQL = text(
    """
    WITH inserted AS (
        INSERT INTO inbound_messages (id, org_id, kind, delivery_key, content_type, headers, query, body, body_size,
                                      received_at, status, attempts, created_at, updated_at)
        VALUES (:id, :org_id, :kind, :key, :content_type, CAST(:headers AS jsonb), CAST(:query AS jsonb), :body,
                :body_size, :now, 'received', 0, :now, :now)
        ON CONFLICT (org_id, delivery_key) DO NOTHING
        RETURNING id
    )
    SELECT id, true AS created FROM inserted
    UNION ALL
    SELECT id, false FROM inbound_messages
    WHERE org_id = :org_id AND delivery_key = :key AND NOT EXISTS (SELECT 1 FROM inserted)
    """
)


async def store(session: AsyncSession, org_id: uuid.UUID, delivery: Delivery, key: str) -> Stored:
    """Insert once per (org, delivery key); a redelivery returns the first row's id and queues nothing."""
    now = clock.now()
    row = (
        await session.execute(
            STORE_SQL,
            {
                "id": uuid.uuid4(),
                "org_id": org_id,
                "kind": delivery.kind.value,
                "key": key,
                "content_type": delivery.content_type[:200],
                "headers": json.dumps(dict(delivery.headers)),
                "query": json.dumps(dict(delivery.query)),
                "body": delivery.body,
                "body_size": len(delivery.body),
                "now": now,
            },
        )
    ).first()
    if row is not None and row.created:
        enqueue_after_commit(session, "process_inbound", str(row.id), job_id=f"inbound:{row.id}")
        return Stored(row.id, True)
    existing = (
        row.id
        if row is not None
        else await session.scalar(
            select(InboundMessage.id).where(InboundMessage.org_id == org_id, InboundMessage.delivery_key == key)
        )
    )
    assert existing is not None  # the conflicting row exists: rows are never deleted on this path
    return Stored(existing, False)


def now() -> float:
    return time.time()
