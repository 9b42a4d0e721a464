"""Mailgun route `forward()`: parsed fields (`body-plain`, `message-headers` JSON) or `body-mime`."""

from __future__ import annotations

import json

from services.intake.parsers.base import ParseError, RawInbound
from services.intake.parsers.common import decode_form
from services.intake.parsers.email.mime import InboundEmail, build, from_bytes

TOP_LEVEL_HEADERS = ("From", "To", "Subject", "Reply-To", "Message-Id", "In-Reply-To", "References", "Date")


def to_email(raw: RawInbound) -> InboundEmail:
    fields = decode_form(raw)
    if fields.get("body-mime"):
        mail = from_bytes(str(fields["body-mime"]).encode("utf-8", errors="replace"))
        mail.envelope_to = str(fields.get("recipient") or "").lower() or None
        return mail
    if not (fields.get("from") or fields.get("message-headers")):
        raise ParseError("mailgun post without sender")
    pairs: list[tuple[str, str]] = []
    try:
        listed = json.loads(str(fields.get("message-headers") or "[]"))
        pairs = [(str(n), str(v)) for n, v in listed if isinstance(n, str)]
    except (ValueError, TypeError):
        pairs = []
    present = {name.lower() for name, _ in pairs}
    for name in TOP_LEVEL_HEADERS:
        value = fields.get(name) or fields.get(name.lower())
        if value and name.lower() not in present:
            pairs.append((name, str(value)))
    return build(
        pairs,
        text=str(fields.get("body-plain") or "") or None,
        html=str(fields.get("body-html") or "") or None,
        envelope_to=str(fields.get("recipient") or "").lower() or None,
    )
