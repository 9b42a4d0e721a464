"""Helpers every parser shares: decoding form bodies and building the normalized pieces of a signal.

Keeping relay/placeholder handling here means no sender module can put an ILS relay into
`contact.email` by forgetting a rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from dateutil import parser as dateutil_parser

from services.intake.parsers.base import ParseError, ParseResult, RawInbound
from shared import formdata
from shared.enums import SignalEvent
from shared.formdata import media_type
from shared.identity import identity_email
from shared.normalize import (
    caller_contact_name,
    is_anonymous,
    is_relay_email,
    normalize_email,
    normalize_phone,
    split_name,
)
from shared.normalize.caller_id import ANONYMOUS_ANSWERED_REASON, ANONYMOUS_CALLER_REASON
from shared.schemas.signal import PropertyHint, SignalContact

OPT_OUT_WORDS = frozenset({"stop", "unsubscribe", "end", "quit", "stopall", "revoke", "optout", "cancel"})
OPT_IN_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})


def decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(decode_text(body))
    except (ValueError, RecursionError) as exc:
        raise ParseError("malformed json") from exc


def decode_urlencoded(body: bytes) -> dict[str, str]:
    pairs = parse_qs(decode_text(body), keep_blank_values=True)
    return {key: values[-1] for key, values in pairs.items()}


def decode_multipart(body: bytes, content_type: str) -> dict[str, str]:
    """multipart/form-data fields as text; a malformed body is a parse error (the row fails, with a reason)."""
    try:
        return formdata.decode_multipart(body, content_type)
    except formdata.MalformedBody as error:
        raise ParseError(str(error)) from error


def decode_form(raw: RawInbound) -> dict[str, Any]:
    """A flat field dict from JSON, urlencoded or multipart bodies (content type first, then sniffing)."""
    kind = media_type(raw.content_type)
    if kind == "multipart/form-data":
        return decode_multipart(raw.body, raw.content_type)
    if kind.endswith("json") or raw.body.lstrip()[:1] in (b"{", b"["):
        data = decode_json(raw.body)
        if not isinstance(data, dict):
            raise ParseError("json body is not an object")
        return data
    if kind in ("application/x-www-form-urlencoded", "") or b"=" in raw.body[:200]:
        return decode_urlencoded(raw.body)
    raise ParseError("unsupported content type")


def first(fields: Mapping[str, Any], *names: str) -> Any:
    """First present, non-blank value among `names`."""
    for name in names:
        value = fields.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
        if isinstance(value, list) and not value:
            continue
        return value
    return None


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if v not in (None, ""))
    text = re.sub(r"[ \t]+", " ", str(value)).strip()
    return text or None


def build_contact(
    *,
    name: object = None,
    first_name: object = None,
    last_name: object = None,
    email: object = None,
    reply_to: object = None,
    phone: object = None,
    region: str = "US",
) -> SignalContact:
    """A contact with every rule applied: relays to reply_to, placeholders dropped, names split."""
    full, first_n, last_n = split_name(name)
    if first_name or last_name:
        first_n = split_name(first_name)[0] or first_n
        last_n = split_name(last_name)[0] or last_n
        if not full:
            full = " ".join(p for p in (first_n, last_n) if p) or None
    real = identity_email(email)
    relay = None
    for candidate in (email, reply_to):
        addr = normalize_email(candidate)
        if addr and is_relay_email(addr):
            relay = relay or addr
    if real is None and reply_to is not None:
        real = identity_email(reply_to)
    e164, extension = normalize_phone(phone, region)
    return SignalContact(
        full_name=full,
        first_name=first_n,
        last_name=last_n,
        email=real,
        phone=e164,
        phone_extension=extension,
        reply_to=relay,
    )


def caller_contact(phone: object, caller_name: object, region: str = "US") -> SignalContact:
    """A caller: the number, and the caller-ID name only when it is a person's (never "WIRELESS CALLER")."""
    return build_contact(name=caller_contact_name(as_text(caller_name)), phone=phone, region=region)


def anonymous_call(phone: object, *, missed: bool, parser: str, hint: PropertyHint) -> ParseResult | None:
    """A withheld / anonymous caller makes no contact and no lead: nobody can be answered, and every such
    call would add another empty contact. The delivery stays `ignored`, with the property it rang."""
    if not is_anonymous(phone):
        return None
    reason = ANONYMOUS_CALLER_REASON if missed else ANONYMOUS_ANSWERED_REASON
    return ParseResult.ignored(reason, parser=parser, property=hint)


def parse_bool(value: Any) -> bool | None:
    """Yes/no answers; 'Not answered' and blanks stay None (unknown is not false)."""
    if isinstance(value, bool):
        return value
    text = (as_text(value) or "").casefold()
    if not text or text in {"not answered", "n/a", "unknown", "maybe"}:
        return None
    if re.match(r"^(no|none|false|0|n)\b", text) or "no pets" in text:
        return False
    if re.match(r"^(yes|true|1|y)\b", text) or re.search(r"\b(dogs?|cats?|pets?|birds?|fish)\b", text):
        return True
    return None


def parse_bedrooms(value: Any) -> int | None:
    """`studio` = 0; `2`, `2 Beds`, `2BR`, `2/1` (beds/baths) = 2; `Any` = None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value) if 0 <= value <= 20 else None
    text = str(value).strip().casefold()
    if "studio" in text or text in {"0", "0 br", "0 beds"}:
        return 0
    match = re.search(r"(\d+)", text)
    if match and 0 <= int(match.group(1)) <= 20:
        return int(match.group(1))
    return None


def keyword_event(body: str | None, opt_out_type: str | None = None) -> SignalEvent:
    """SMS keyword on the trimmed, case-folded whole body (carrier rules); anything else is a message."""
    marker = (opt_out_type or "").strip().casefold()
    if marker in {"stop"}:
        return SignalEvent.opt_out
    if marker in {"start"}:
        return SignalEvent.opt_in
    if marker in {"help"}:
        return SignalEvent.help
    word = (body or "").strip().strip(".!").casefold()
    if word in OPT_OUT_WORDS:
        return SignalEvent.opt_out
    if word in OPT_IN_WORDS:
        return SignalEvent.opt_in
    if word in HELP_WORDS:
        return SignalEvent.help
    return SignalEvent.sms_inbound


def parse_timestamp(value: Any, default: datetime) -> datetime:
    """An aware datetime from ISO text, epoch seconds or milliseconds; the default when unreadable."""
    if value is None or value == "":
        return default
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
            number = float(value)
            if number > 1e11:
                number /= 1000
            return datetime.fromtimestamp(number, tz=UTC)
        parsed = dateutil_parser.parse(str(value))
    except (ValueError, OverflowError, OSError):
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def intent_from_message(message: str | None) -> SignalEvent:
    """ILS default texts carry the renter's intent ("schedule a viewing", "send me an application")."""
    text = (message or "").casefold()
    if re.search(r"\b(schedule|book|request)\w*\s+(a\s+)?(viewing|tour|showing|visit)\b|\btour\b", text):
        return SignalEvent.tour_request
    if re.search(r"\bsend me an application\b|\brequesting an application\b|\bapply\b", text):
        return SignalEvent.application
    return SignalEvent.inquiry


def utm_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    return {
        key: str(value) for key, value in fields.items() if key.lower().startswith("utm_") and value not in (None, "")
    }


def compact(values: Iterable[str | None], sep: str = ", ") -> str | None:
    joined = sep.join(v for v in values if v)
    return joined or None
