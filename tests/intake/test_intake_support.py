"""Helpers of the intake API and pipeline tests (no tests here): signing like each sender does, posting
a corpus case through the real endpoint, setting secrets, running a burst worker on the real queue."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.intake.signatures import twilio_signature
from shared.enums import InboundKind
from shared.models import InboundMessage
from tests.conftest import OrgFixture
from tests.corpus.loader import CorpusCase

PUBLIC_URL = "https://guestcard.test"
SERVICE_TOKEN = "test-service-token"
SECRETS = {
    "twilio": "tw-auth-token",
    "mailgun": "mg-signing-key",
    "callrail": "cr-signing-key",
    "webflow": "wf-webhook-secret",
    "ringcentral": "rc-secret",
}
SIGNING_KINDS = {
    InboundKind.twilio_voice: "twilio",
    InboundKind.twilio_sms: "twilio",
    InboundKind.mailgun: "mailgun",
    InboundKind.callrail: "callrail",
    InboundKind.webflow: "webflow",
    InboundKind.ringcentral: "ringcentral",
}


def intake_path(org: OrgFixture, kind: InboundKind | str) -> str:
    return f"/v1/intake/{org.intake_key}/{getattr(kind, 'value', kind)}"


async def set_secrets(client: httpx.AsyncClient, org: OrgFixture, secrets: dict[str, str] | None = None) -> None:
    for provider, secret in (secrets or SECRETS).items():
        response = await client.put(
            f"/v1/integrations/{provider}", json={"signing_secret": secret}, headers=org.headers
        )
        assert response.status_code == 204, response.text


def mailgun_fields(body: bytes, secret: str, timestamp: int, token: str | None = None) -> bytes:
    """Re-sign an urlencoded Mailgun body: only timestamp/token/signature change, every other byte stays."""
    token = token or uuid.uuid4().hex
    signature = hmac.new(secret.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    text = body.decode()
    for name, value in (("timestamp", str(timestamp)), ("token", token), ("signature", signature)):
        pattern = re.compile(rf"(^|&){name}=[^&]*")
        if pattern.search(text):
            text = pattern.sub(lambda m, n=name, v=value: f"{m.group(1)}{n}={v}", text)
        else:
            text += ("&" if text else "") + urlencode({name: value})
    return text.encode()


def sign(
    kind: InboundKind,
    path: str,
    body: bytes,
    content_type: str,
    headers: dict[str, str],
    query: dict[str, str],
    secrets: dict[str, str] | None = None,
    now: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers a correctly configured sender would send for this delivery."""
    secrets = secrets or SECRETS
    out = {k: v for k, v in headers.items() if k.lower() not in {"x-twilio-signature", "signature"}}
    moment = time.time() if now is None else now
    if kind in (InboundKind.twilio_voice, InboundKind.twilio_sms):
        url = PUBLIC_URL + path + (f"?{urlencode(query)}" if query else "")
        params = parse_qs(body.decode(), keep_blank_values=True)
        out["X-Twilio-Signature"] = twilio_signature(url, params, secrets["twilio"])
    elif kind == InboundKind.mailgun:
        if content_type.startswith("application/x-www-form-urlencoded"):
            body = mailgun_fields(body, secrets["mailgun"], int(moment))
    elif kind == InboundKind.callrail:
        digest = hmac.new(secrets["callrail"].encode(), body, hashlib.sha1).digest()
        out["Signature"] = base64.b64encode(digest).decode()
    elif kind == InboundKind.webflow:
        stamp = str(int(moment * 1000))
        out = {k: v for k, v in out.items() if not k.lower().startswith("x-webflow-")}
        out["x-webflow-timestamp"] = stamp
        message = stamp.encode() + b":" + body
        out["x-webflow-signature"] = hmac.new(secrets["webflow"].encode(), message, hashlib.sha256).hexdigest()
    elif kind == InboundKind.ringcentral:
        out = {k: v for k, v in out.items() if k.lower() != "verification-token"}
        out["Verification-Token"] = secrets["ringcentral"]
    return body, out


async def post_case(
    client: httpx.AsyncClient, org: OrgFixture, case: CorpusCase, now: float | None = None
) -> httpx.Response:
    path = intake_path(org, case.kind)
    raw = case.raw
    body, headers = sign(case.kind, path, raw.body, raw.content_type, dict(raw.headers), dict(raw.query), now=now)
    headers["Content-Type"] = raw.content_type
    return await client.post(path, content=body, headers=headers, params=dict(raw.query) or None)


async def rows_for(sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture) -> list[InboundMessage]:
    async with sessionmaker() as session:
        result = await session.scalars(
            select(InboundMessage).where(InboundMessage.org_id == org.org_id).order_by(InboundMessage.received_at)
        )
        return list(result.all())


async def row(sessionmaker: async_sessionmaker[AsyncSession], inbound_id: uuid.UUID | str) -> InboundMessage:
    async with sessionmaker() as session:
        found = await session.get(InboundMessage, uuid.UUID(str(inbound_id)))
        assert found is not None
        return found


def success_status(kind: InboundKind) -> int:
    return (
        202
        if kind
        in {InboundKind.email, InboundKind.mits, InboundKind.web_form, InboundKind.webflow, InboundKind.callrail}
        else 200
    )


def first_signal_case(cases: list[CorpusCase], kind: InboundKind) -> CorpusCase:
    return next(case for case in cases if case.kind == kind and case.expected.get("outcome") == "signal")


def fields_of(response: httpx.Response) -> dict[str, Any]:
    return dict(response.json())
