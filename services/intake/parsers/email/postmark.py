"""Postmark inbound JSON: typed fields plus the original headers in `Headers[{Name, Value}]`."""

from __future__ import annotations

from typing import Any

from services.intake.parsers.base import ParseError, RawInbound
from services.intake.parsers.common import decode_json
from services.intake.parsers.email.mime import InboundEmail, build


def _from_field(data: dict[str, Any]) -> str | None:
    full = data.get("FromFull")
    if isinstance(full, dict) and full.get("Email"):
        name = str(full.get("Name") or "").replace('"', "")
        return f'"{name}" <{full["Email"]}>' if name else str(full["Email"])
    return str(data["From"]) if data.get("From") else None


def to_email(raw: RawInbound) -> InboundEmail:
    data = decode_json(raw.body)
    if not isinstance(data, dict):
        raise ParseError("postmark body is not an object")
    pairs: list[tuple[str, str]] = []
    for item in data.get("Headers") or []:
        if isinstance(item, dict) and item.get("Name"):
            pairs.append((str(item["Name"]), str(item.get("Value") or "")))
    present = {name.lower() for name, _ in pairs}
    typed = {
        "From": _from_field(data),
        "To": data.get("To"),
        "Cc": data.get("Cc"),
        "Reply-To": data.get("ReplyTo"),
        "Subject": data.get("Subject"),
        "Date": data.get("Date"),
    }
    for name, value in typed.items():
        if value and name.lower() not in present:
            pairs.append((name, str(value)))
    if "message-id" not in present and data.get("MessageID"):
        pairs.append(("Message-ID", f"<{data['MessageID']}>"))
    if not any(name.lower() == "from" for name, _ in pairs):
        raise ParseError("postmark post without sender")
    return build(
        pairs,
        text=str(data.get("TextBody") or "") or None,
        html=str(data.get("HtmlBody") or "") or None,
        envelope_to=str(data.get("OriginalRecipient") or "").lower() or None,
    )
