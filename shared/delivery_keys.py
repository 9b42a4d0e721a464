"""Idempotency key of one delivery, computed in the API request before the raw payload is stored.

Lives in shared/ (not the worker's parsers) so the API never imports services.intake.

Cheap and total: a header lookup or a shallow decode, never a full parse, never an exception. Each key
is prefixed with the kind so ids from two senders cannot collide; anything without a sender id falls back
to a hash of the exact body (a redelivery of the same bytes is the same delivery).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from email.parser import BytesHeaderParser, HeaderParser
from email.policy import compat32
from typing import Any
from urllib.parse import parse_qs

from shared.enums import InboundKind
from shared.formdata import decode_multipart, media_type

_MSGID = re.compile(r"<([^<>\s]+)>")


def body_hash(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _fields(body: bytes, content_type: str) -> dict[str, Any]:
    kind = media_type(content_type)
    if kind == "multipart/form-data":
        return dict(decode_multipart(body, content_type))
    text = body.decode("utf-8", errors="replace")
    if kind.endswith("json") or text.lstrip()[:1] == "{":
        data = json.loads(text)
        return data if isinstance(data, dict) else {}
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _clean_msgid(value: object) -> str | None:
    if not value:
        return None
    text = str(value).strip()
    found = _MSGID.findall(text)
    return (found[-1] if found else text.split()[0]) if text else None


def _header_block(block: str) -> dict[str, str]:
    message = HeaderParser(policy=compat32).parsestr(block.strip() + "\n\n", headersonly=True)
    return {k.lower(): str(v) for k, v in message.items()}


def _raw_email(body: bytes) -> str | None:
    headers = BytesHeaderParser(policy=compat32).parsebytes(body[:65536], headersonly=True)
    msgid = _clean_msgid(headers.get("Message-ID"))
    if msgid:
        return msgid
    nid = headers.get("x-nid")
    return f"x-nid:{str(nid).strip()}" if nid else None


def _sendgrid(fields: dict[str, Any]) -> str | None:
    if fields.get("headers"):
        return _clean_msgid(_header_block(str(fields["headers"])).get("message-id"))
    if fields.get("email"):
        return _raw_email(str(fields["email"]).encode())
    return None


def _mailgun(fields: dict[str, Any]) -> str | None:
    for name in ("Message-Id", "Message-ID", "message-id"):
        if fields.get(name):
            return _clean_msgid(fields[name])
    try:
        for name, value in json.loads(str(fields.get("message-headers") or "[]")):
            if str(name).lower() == "message-id":
                return _clean_msgid(value)
    except (ValueError, TypeError):
        pass
    return _raw_email(str(fields["body-mime"]).encode()) if fields.get("body-mime") else None


def _postmark(fields: dict[str, Any]) -> str | None:
    for item in fields.get("Headers") or []:
        if isinstance(item, dict) and str(item.get("Name", "")).lower() == "message-id":
            return _clean_msgid(item.get("Value"))
    return str(fields["MessageID"]) if fields.get("MessageID") else None


def _twilio_voice(fields: dict[str, Any]) -> str | None:
    sid = fields.get("CallSid")
    status = fields.get("DialCallStatus") or fields.get("CallStatus") or ""
    return f"{sid}:{status}" if sid else None


def _twilio_sms(fields: dict[str, Any]) -> str | None:
    return fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid")


def _mits(body: bytes, fields: dict[str, Any]) -> str | None:
    xml = str(fields.get("Xml") or fields.get("xml") or "") or body.decode("utf-8", errors="replace")
    third = re.search(r'IDType="ThirdPartyID"[^>]*IDValue="([^"]+)"|IDValue="([^"]+)"[^>]*IDType="ThirdPartyID"', xml)
    event = re.search(r'<(?:\w+:)?EventID[^>]*IDValue="([^"]+)"', xml)
    if not third:
        return None
    third_id = third.group(1) or third.group(2)
    return f"{third_id}:{event.group(1)}" if event else third_id


def _callrail(fields: dict[str, Any], query: Mapping[str, str]) -> str | None:
    ident = fields.get("resource_id") or fields.get("id")
    if not ident:
        return None
    event = query.get("event") or fields.get("event") or fields.get("webhook_event")
    if not event:
        event = "form" if "form_data" in fields else "text" if "content" in fields else "call"
    return f"{ident}:{event}"


def _webflow(fields: dict[str, Any]) -> str | None:
    payload = fields.get("payload")
    return str(payload["id"]) if isinstance(payload, dict) and payload.get("id") else None


def _web_form(fields: dict[str, Any], headers: Mapping[str, str]) -> str | None:
    return headers.get("idempotency-key") or fields.get("submission_id") or fields.get("idempotency_key")


def _ringcentral(fields: dict[str, Any]) -> str | None:
    return fields.get("uuid")


FIELD_KEYS: dict[InboundKind, Callable[[dict[str, Any]], str | None]] = {
    InboundKind.sendgrid: _sendgrid,
    InboundKind.mailgun: _mailgun,
    InboundKind.postmark: _postmark,
    InboundKind.twilio_voice: _twilio_voice,
    InboundKind.twilio_sms: _twilio_sms,
    InboundKind.webflow: _webflow,
    InboundKind.ringcentral: _ringcentral,
}


def _key(
    kind: InboundKind, body: bytes, content_type: str, headers: Mapping[str, str], query: Mapping[str, str]
) -> str | None:
    if kind == InboundKind.email:
        return _raw_email(body)
    if kind in (InboundKind.twilio_voice, InboundKind.twilio_sms) and headers.get("i-twilio-idempotency-token"):
        return "twilio-token:" + headers["i-twilio-idempotency-token"]
    if kind == InboundKind.web_form and headers.get("idempotency-key"):
        return headers["idempotency-key"]
    if kind == InboundKind.zillow:
        return None
    fields = _fields(body, content_type) if body else {}
    if kind == InboundKind.mits:
        return _mits(body, fields)
    if kind == InboundKind.callrail:
        return _callrail(fields, query)
    if kind == InboundKind.web_form:
        return _web_form(fields, headers)
    extractor = FIELD_KEYS.get(kind)
    return extractor(fields) if extractor else None


DELIVERY_KEY_MAX = 300  # inbound_messages.delivery_key


def delivery_key(
    kind: InboundKind | str,
    body: bytes,
    content_type: str = "",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> str:
    """`<kind>:<sender id>` or `<kind>:sha256:<hex of body>`; never raises."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    prefix = str(getattr(kind, "value", kind))
    try:
        found = _key(InboundKind(prefix), body, content_type or "", lowered, query or {})
    except Exception:  # any unreadable body falls back to the hash
        found = None
    value = str(found).strip() if found not in (None, "") else ""
    if not value or len(prefix) + 1 + len(value) > DELIVERY_KEY_MAX:  # the whole key fits its column
        value = body_hash(body)
    return f"{prefix}:{value}"
