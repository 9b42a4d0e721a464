"""Signed, expiring tokens for one-click links: offer accept/decline, unsubscribe, calendar feeds, dashboard.

One implementation for every link the product mails or texts. A token is `base64url(json).base64url(mac)`
with HMAC-SHA256 over the purpose and the payload, so a token made for one purpose never opens another.
Expiry is checked against the injectable clock. Single use, where a link needs it, is the caller's row
state (an offer already answered), not the token's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from shared import clock


class BadToken(ValueError):
    """Malformed, forged, for another purpose, or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, purpose: str, body: str) -> bytes:
    return hmac.new(key.encode(), f"{purpose}\n{body}".encode(), hashlib.sha256).digest()


def sign(key: str, purpose: str, payload: dict[str, Any], expires_at: datetime | None = None) -> str:
    data = dict(payload)
    if expires_at is not None:
        data["exp"] = int(expires_at.timestamp())
    body = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True, default=str).encode())
    return f"{body}.{_b64(_mac(key, purpose, body))}"


def verify(key: str, purpose: str, token: str) -> dict[str, Any]:
    """The payload of a good token; BadToken otherwise (constant-time compare)."""
    body, _, mac = token.partition(".")
    try:
        given = _unb64(mac)
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError) as error:
        raise BadToken("malformed token") from error
    if not hmac.compare_digest(given, _mac(key, purpose, body)) or not isinstance(payload, dict):
        raise BadToken("bad signature")
    expires = payload.pop("exp", None)
    if expires is not None and clock.now().timestamp() >= expires:
        raise BadToken("expired")
    return payload
