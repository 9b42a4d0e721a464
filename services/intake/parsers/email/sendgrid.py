"""SendGrid Inbound Parse: multipart form, either parsed fields or the raw MIME in field `email`."""

from __future__ import annotations

import json
from email.parser import HeaderParser
from email.policy import default as default_policy

from services.intake.parsers.base import ParseError, RawInbound
from services.intake.parsers.common import decode_form
from services.intake.parsers.email.mime import InboundEmail, build, from_bytes


def header_pairs(block: str) -> list[tuple[str, str]]:
    """Header name/value pairs from a raw header block (RFC 2047 decoded)."""
    message = HeaderParser(policy=default_policy).parsestr(block.strip() + "\n\n")
    pairs = []
    for name, value in message.items():
        try:
            pairs.append((name, str(value)))
        except (ValueError, TypeError, IndexError):
            continue
    return pairs


def to_email(raw: RawInbound) -> InboundEmail:
    fields = decode_form(raw)
    if fields.get("email"):
        return from_bytes(str(fields["email"]).encode("utf-8", errors="replace"))
    if not (fields.get("headers") or fields.get("from")):
        raise ParseError("sendgrid post without headers or email")
    pairs = header_pairs(str(fields.get("headers") or ""))
    present = {name.lower() for name, _ in pairs}
    for name in ("from", "to", "subject"):
        if name not in present and fields.get(name):
            pairs.append((name, str(fields[name])))
    envelope_to = None
    try:
        envelope = json.loads(str(fields.get("envelope") or "{}"))
        recipients = envelope.get("to") if isinstance(envelope, dict) else None
        envelope_to = str(recipients[0]).lower() if recipients else None
    except (ValueError, TypeError, IndexError):
        envelope_to = None
    return build(
        pairs,
        text=str(fields.get("text") or "") or None,
        html=str(fields.get("html") or "") or None,
        envelope_to=envelope_to,
    )
