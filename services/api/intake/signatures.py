"""Webhook signature checks as pure functions (no request objects), all compared in constant time.

The router gathers the exact URL, raw body and headers; these functions only answer yes or no.
Formulas: intake-formats.md §8 (Twilio, Mailgun, CallRail), Webflow's docs, RingCentral's
Verification-Token, SendGrid's signed Inbound Parse (ECDSA P-256 / SHA-256 over timestamp + body, checked
with the account's public key), and Postmark's basic auth on the webhook URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import parse_qs, urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key


def _eq(expected: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def _epoch(value: datetime | float | int) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _as_lists(params: Mapping[str, str] | Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for key, value in (params or {}).items():
        result[key] = [value] if isinstance(value, str) else [str(v) for v in value]
    return result


def twilio_signature(url: str, params: Mapping[str, str] | Mapping[str, Sequence[str]] | None, token: str) -> str:
    """Base64 HMAC-SHA1 of the URL plus sorted `key + value` pairs (repeated keys: each value, sorted)."""
    payload = url
    for key, values in sorted(_as_lists(params).items()):
        for value in sorted(set(values)):
            payload += key + value
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """Twilio may sign with or without the default port; accept both spellings."""
    parts = urlsplit(url)
    variants = [url]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if parts.port is None and default and parts.hostname:
        netloc = f"{parts.netloc}:{default}"
        variants.append(urlunsplit(parts._replace(netloc=netloc)))
    elif parts.port == default and parts.hostname:
        netloc = parts.netloc.rsplit(":", 1)[0]
        variants.append(urlunsplit(parts._replace(netloc=netloc)))
    return variants


def twilio_valid(
    url: str,
    params: Mapping[str, str] | Mapping[str, Sequence[str]] | None,
    auth_token: str,
    header: str | None,
    body: bytes | None = None,
) -> bool:
    """`X-Twilio-Signature` check. With a `bodySHA256` query parameter (JSON bodies) the URL alone is
    signed and the body must hash to that parameter."""
    if not auth_token or not header:
        return False
    body_hash = parse_qs(urlsplit(url).query).get("bodySHA256")
    if body_hash:
        if body is None or not _eq(hashlib.sha256(body).hexdigest(), body_hash[0]):
            return False
        params = None
    return any(_eq(twilio_signature(variant, params, auth_token), header) for variant in _url_variants(url))


def mailgun_valid(
    signing_key: str,
    timestamp: str | int,
    token: str,
    signature: str | None,
    now: datetime | float,
    max_age: int = 300,
) -> bool:
    """HMAC-SHA256 hex of `timestamp + token`, refused when the timestamp is more than max_age off."""
    if not signing_key or not token or not signature:
        return False
    try:
        age = abs(_epoch(now) - float(timestamp))
    except (TypeError, ValueError):
        return False
    if age > max_age:
        return False
    expected = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return _eq(expected, signature)


def callrail_valid(signing_key: str, raw_body: bytes, header: str | None) -> bool:
    """`Signature` header: base64 HMAC-SHA1 of the raw body with the company signing key."""
    if not signing_key or not header:
        return False
    digest = hmac.new(signing_key.encode(), raw_body, hashlib.sha1).digest()
    return _eq(base64.b64encode(digest).decode(), header)


def webflow_valid(
    secret: str,
    timestamp: str | int,
    raw_body: bytes,
    header: str | None,
    now: datetime | float,
    max_age: int = 300,
) -> bool:
    """`x-webflow-signature`: hex HMAC-SHA256 of `f"{timestamp}:{body}"`; timestamp in milliseconds."""
    if not secret or not header:
        return False
    try:
        sent = float(timestamp) / 1000
    except (TypeError, ValueError):
        return False
    if abs(_epoch(now) - sent) > max_age:
        return False
    message = str(timestamp).encode() + b":" + raw_body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return _eq(expected, header)


def ringcentral_valid(expected_token: str | None, header: str | None) -> bool:
    """`Verification-Token` equals the token set on the subscription (no token configured = refuse)."""
    if not expected_token:
        return False
    return _eq(expected_token, header)


def _ec_public_key(text: str) -> ec.EllipticCurvePublicKey | None:
    """SendGrid shows the key as base64 DER (SubjectPublicKeyInfo); accept PEM too."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def sendgrid_valid(
    public_key: str,
    timestamp: str | None,
    raw_body: bytes,
    header: str | None,
    now: datetime | float,
    max_age: int = 300,
) -> bool:
    """`X-Twilio-Email-Event-Webhook-Signature`: base64 DER ECDSA over `timestamp + body` (SHA-256);
    `X-Twilio-Email-Event-Webhook-Timestamp` in seconds, refused when more than max_age off."""
    if not public_key or not header or not timestamp:
        return False
    try:
        if abs(_epoch(now) - float(timestamp)) > max_age:
            return False
        signature = base64.b64decode(header.strip(), validate=True)
    except (TypeError, ValueError):
        return False
    key = _ec_public_key(public_key)
    if key is None:
        return False
    try:
        key.verify(signature, timestamp.encode() + raw_body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def basic_auth_valid(credentials: str, header: str | None) -> bool:
    """`Authorization: Basic base64(user:password)` equal to the configured `user:password`."""
    if not credentials or not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    expected = base64.b64encode(credentials.encode()).decode()
    return _eq(expected, value)
