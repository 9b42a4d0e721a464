"""Opt-in sender authentication: SendGrid's signed Inbound Parse (ECDSA) and Postmark's basic auth.

Without a configured key these senders are authenticated by the secret intake URL alone (as before); once
an organization sets one, every delivery must carry a valid signature or credentials (fail-closed).
"""

from __future__ import annotations

import base64
import time

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.intake.signatures import basic_auth_valid, sendgrid_valid
from tests.conftest import OrgFixture
from tests.intake.test_intake_support import rows_for

BODY = (
    b'--xYzZY\r\nContent-Disposition: form-data; name="from"\r\n\r\nDana <dana@example.com>\r\n'
    b'--xYzZY\r\nContent-Disposition: form-data; name="subject"\r\n\r\nIs the 2BR available?\r\n'
    b'--xYzZY\r\nContent-Disposition: form-data; name="text"\r\n\r\nCan I tour Saturday?\r\n--xYzZY--\r\n'
)
CONTENT_TYPE = "multipart/form-data; boundary=xYzZY"


def _keypair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(der).decode()


def _sign(private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return base64.b64encode(private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def test_sendgrid_signature_vectors() -> None:
    private, public = _keypair()
    now = time.time()
    stamp = str(int(now))
    signature = _sign(private, stamp, BODY)
    assert sendgrid_valid(public, stamp, BODY, signature, now)
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert sendgrid_valid(pem, stamp, BODY, signature, now)
    assert not sendgrid_valid(public, stamp, BODY + b" ", signature, now)  # body changed
    assert not sendgrid_valid(public, str(int(now) + 1), BODY, signature, now)  # timestamp changed
    assert not sendgrid_valid(public, stamp, BODY, signature, now + 301)  # stale
    assert not sendgrid_valid(_keypair()[1], stamp, BODY, signature, now)  # another account's key
    assert not sendgrid_valid("not-a-key", stamp, BODY, signature, now)
    assert not sendgrid_valid(public, stamp, BODY, "%%%", now)
    assert not sendgrid_valid(public, None, BODY, signature, now)


def test_basic_auth_vectors() -> None:
    good = "Basic " + base64.b64encode(b"postmark:s3cret").decode()
    assert basic_auth_valid("postmark:s3cret", good)
    assert not basic_auth_valid("postmark:s3cret", "Basic " + base64.b64encode(b"postmark:other").decode())
    assert not basic_auth_valid("postmark:s3cret", "Bearer " + base64.b64encode(b"postmark:s3cret").decode())
    assert not basic_auth_valid("postmark:s3cret", None)
    assert not basic_auth_valid("", good)


async def test_sendgrid_is_checked_once_a_key_is_set(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    path = f"/v1/intake/{org.intake_key}/sendgrid"
    plain = {"Content-Type": CONTENT_TYPE}
    before = await client.post(path, content=BODY, headers=plain)
    assert before.status_code == 200, before.text  # no key configured: the intake URL authenticates

    private, public = _keypair()
    put = await client.put("/v1/integrations/sendgrid", headers=org.headers, json={"signing_secret": public})
    assert put.status_code in (200, 204), put.text
    body = BODY.replace(b"Saturday", b"Sunday")
    refused = await client.post(path, content=body, headers=plain)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    stamp = str(int(time.time()))
    signed = {
        **plain,
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "X-Twilio-Email-Event-Webhook-Signature": _sign(private, stamp, body),
    }
    forged = {**signed, "X-Twilio-Email-Event-Webhook-Signature": _sign(_keypair()[0], stamp, body)}
    assert (await client.post(path, content=body, headers=forged)).status_code == 401
    assert len(await rows_for(sessionmaker, org)) == 1
    accepted = await client.post(path, content=body, headers=signed)
    assert accepted.status_code == 200, accepted.text
    assert len(await rows_for(sessionmaker, org)) == 2


async def test_postmark_basic_auth_once_set(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    path = f"/v1/intake/{org.intake_key}/postmark"
    payload = {
        "FromFull": {"Email": "dana@example.com", "Name": "Dana"},
        "Subject": "2BR?",
        "TextBody": "Is it available?",
        "MessageID": "pm-1",
        "Headers": [],
    }
    put = await client.put("/v1/integrations/postmark", headers=org.headers, json={"signing_secret": "postmark:s3cret"})
    assert put.status_code in (200, 204), put.text
    assert (await client.post(path, json=payload)).status_code == 401
    wrong = httpx.BasicAuth("postmark", "guess")
    assert (await client.post(path, json=payload, auth=wrong)).status_code == 401
    assert await rows_for(sessionmaker, org) == []
    ok = await client.post(path, json=payload, auth=httpx.BasicAuth("postmark", "s3cret"))
    assert ok.status_code == 200, ok.text
    [row] = await rows_for(sessionmaker, org)
    assert "authorization" not in {name.lower() for name in row.headers}  # credentials are never stored
