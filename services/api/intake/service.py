"""Intake hot path: size cap, sender authentication, then one idempotent insert into the inbox.

Per request, once the caches are warm: one rate-limit script and one wake script (shared.queue.wake) in Redis, and one
autocommit statement in PostgreSQL on a bare asyncpg pool (no ORM session, no BEGIN/COMMIT, no checkout
ping). The organization of an intake key and a sender's signing secret are kept as long as principals are
(settings.principal_cache_seconds), the secret dropped everywhere when it is set or removed. Parsing waits
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

import asyncpg
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from redis.asyncio import Redis

from services.api import ratelimit
from services.api.auth import cache as credential_cache
from services.api.auth.keys import hash_secret
from services.api.intake import signatures
from services.api.state import AppState
from shared import clock, crypto
from shared.db import on_pool
from shared.delivery_keys import delivery_key
from shared.enums import InboundKind
from shared.errors import DomainError, NotFound, PayloadTooLarge, Unauthorized, Unavailable
from shared.formdata import decode_multipart, media_type
from shared.logging import get_logger
from shared.queue import DRAIN_INBOUND, intake_wake_key, wake

log = get_logger(__name__)

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


async def accept(state: AppState, request: Request, intake_key: str, kind: InboundKind) -> Response:
    """The whole accept: limit, read, authenticate, store (committed), wake the drain, acknowledge. Raises DomainError
    subclasses for refusals; the route and the ASGI fast path (services/api/intake/fast.py) both call this."""
    settings = state.settings
    await ratelimit.check(
        state.queue, "intake", intake_key, settings.rate_limit_intake_per_second, settings.rate_limit_intake_burst
    )
    # the whole body, size-checked, before the first query: a slow upload never holds a pooled connection
    body = await read_body(request, body_cap(kind, settings.email_max_bytes, settings.webhook_max_bytes))
    pool = state.statement_pool
    assert pool is not None  # built by the lifespan
    org_id = await org_id_for_intake_key(pool, intake_key)
    if org_id is None:
        raise NotFound("Unknown intake key.")
    if kind == InboundKind.ringcentral and "validation-token" in request.headers:
        return _ringcentral_handshake(request.headers["validation-token"])
    delivery = Delivery(
        kind=kind,
        body=body,
        content_type=request.headers.get("content-type", ""),
        headers=stored_headers(request),
        signed_headers=request.headers,
        query=dict(request.query_params),
        url=signed_url(settings.public_url, request),
    )
    provider = SIGNING_PROVIDER.get(kind)
    optional = OPTIONAL_SIGNING_PROVIDER.get(kind)
    token = None
    secret = None
    if optional is not None:
        secret = await signing_secret(pool, org_id, optional)
        provider = optional if secret else None
    elif provider is not None:
        secret = await signing_secret(pool, org_id, provider)
    if provider is not None:
        try:
            token = verify(delivery, secret, now())
        except Unauthorized:
            log.info("intake.signature_refused", org_id=str(org_id), kind=kind.value)
            raise
    key = compute_key(delivery)
    if token:
        await refuse_replayed_token(state.queue, org_id, token, key)
    stored = await store(pool, org_id, delivery, key)
    if stored.created:  # committed: now wake the organization's drain (a lost wake is made up by the sweep)
        await wake(state.queue, DRAIN_INBOUND, (str(org_id),), intake_wake_key(org_id), settings.queue_name)
    log.info(
        "intake.stored",
        org_id=str(org_id),
        inbound_id=str(stored.inbound_id),
        kind=kind.value,
        created=stored.created,
        size=len(body),
    )
    return _acknowledge(kind, stored.inbound_id)


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


async def _fetch(pool: asyncpg.Pool, sql: str, *args: object) -> asyncpg.Record | None:
    """One autocommit statement, once more on a fresh connection if the pooled one had died (`shared.db.on_pool`):
    every statement here is a read or the idempotent store, so running it twice is safe."""
    return await on_pool(pool, lambda connection: connection.fetchrow(sql, *args))


# intake key hash -> organization id. An intake key is set once, when its organization is made, and never
# changes hands, so a found answer stays true; it is kept as long as principals are (one read less per
# webhook). Unknown keys are not kept: a flood of made-up keys cannot fill it.
_intake_orgs: dict[str, tuple[float, uuid.UUID]] = {}
ORG_SQL = "SELECT id FROM organizations WHERE intake_key_hash = $1"


async def org_id_for_intake_key(pool: asyncpg.Pool, intake_key: str) -> uuid.UUID | None:
    key_hash = hash_secret(intake_key)
    ttl = credential_cache.cache().ttl
    moment = time.monotonic()
    kept = _intake_orgs.get(key_hash)
    if kept is not None and kept[0] > moment:
        return kept[1]
    row = await _fetch(pool, ORG_SQL, key_hash)
    if row is None:
        return None
    org_id: uuid.UUID = row["id"]
    if ttl > 0:
        if len(_intake_orgs) >= credential_cache.MAX_ENTRIES:
            _intake_orgs.clear()
        _intake_orgs[key_hash] = (moment + ttl, org_id)
    return org_id


SECRET_SQL = "SELECT signing_secret FROM integrations WHERE org_id = $1 AND provider = $2"


async def signing_secret(pool: asyncpg.Pool, org_id: uuid.UUID, provider: str) -> str | None:
    """The sender's secret, decrypted (None: not set), from the credential cache when it is fresh."""
    cache = credential_cache.secrets()
    key = credential_cache.secret_key(org_id, provider)
    found, secret = cache.get(key)
    if found:
        return secret
    generation = cache.generation
    row = await _fetch(pool, SECRET_SQL, org_id, provider)
    secret = None if row is None else crypto.decrypt(row["signing_secret"])
    cache.put(key, secret, generation)
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


# One statement stores a delivery: insert it, or (a redelivery) find the first row. Two statements in one
# round trip would not see a twin committed after this statement's snapshot; the UNION's second arm does.
STORE_SQL = """
    WITH inserted AS (
        INSERT INTO inbound_messages (id, org_id, kind, delivery_key, content_type, headers, query, body, body_size,
                                      received_at, status, attempts, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, 'received', 0, $10, $10)
        ON CONFLICT (org_id, delivery_key) DO NOTHING
        RETURNING id
    )
    SELECT id, true AS created FROM inserted
    UNION ALL
    SELECT id, false FROM inbound_messages
    WHERE org_id = $2 AND delivery_key = $4 AND NOT EXISTS (SELECT 1 FROM inserted)
"""
EXISTING_SQL = "SELECT id, false AS created FROM inbound_messages WHERE org_id = $1 AND delivery_key = $2"


def _json_text(mapping: Mapping[str, str]) -> str:
    """jsonb cannot hold U+0000 (a `%00` in a query string): stored as U+FFFD rather than refusing the delivery.
    The delivery key was computed from the values as sent."""
    return json.dumps({_no_nul(name): _no_nul(value) for name, value in mapping.items()})


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


async def store(pool: asyncpg.Pool, org_id: uuid.UUID, delivery: Delivery, key: str) -> Stored:
    """Insert once per (org, delivery key), committed on return; a redelivery returns the first row's id."""
    row = await _fetch(
        pool,
        STORE_SQL,
        uuid.uuid4(),
        org_id,
        delivery.kind.value,
        key,
        delivery.content_type[:200],
        _json_text(delivery.headers),
        _json_text(delivery.query),
        delivery.body,
        len(delivery.body),
        clock.now(),
    )
    if row is None:  # the twin committed after the statement's snapshot: it is there now
        row = await _fetch(pool, EXISTING_SQL, org_id, key)
    assert row is not None  # the conflicting row exists: rows are never deleted on this path
    return Stored(row["id"], row["created"])


def now() -> float:
    return time.time()
