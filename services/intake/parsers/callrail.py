"""CallRail webhooks: calls, text messages and form submissions, all JSON.

The webhook URL is configured per event type, so the event name comes from the `event` query parameter
when the operator set one; otherwise the body's shape tells calls, texts and forms apart. Pre-call and
routing events are ignored: only a finished call says whether it was missed.
"""

from __future__ import annotations

from typing import Any

from services.intake.parsers.base import ParseContext, ParseResult, RawInbound
from services.intake.parsers.common import (
    anonymous_call,
    as_text,
    build_contact,
    caller_contact,
    decode_form,
    keyword_event,
    parse_timestamp,
    utm_fields,
)
from services.intake.parsers.web_form import signal_from_fields
from shared.enums import Channel, SignalEvent
from shared.normalize import normalize_phone
from shared.schemas.signal import LeadSignal, PropertyHint, SignalSource

MISSED_TYPES = frozenset({"missed", "voicemail", "abandoned", "voicemail_transcription"})
IN_PROGRESS_EVENTS = frozenset({"pre_call", "precall", "call_routing_complete", "routing_complete"})
IGNORED_EVENTS = frozenset({"text_message_sent", "outbound_post_call", "outbound_call_modified"})


def event_name(raw: RawInbound, body: dict[str, Any]) -> str:
    """`post_call`, `text_message_received`, `form_submission`, ... from query, body or shape."""
    explicit = raw.query.get("event") or body.get("event") or body.get("webhook_event")
    if explicit:
        return str(explicit).strip().lower().replace("-", "_").replace(" ", "_")
    if "form_data" in body:
        return "form_submission"
    if "content" in body and ("source_number" in body or "message_type" in body):
        return "text_message_received"
    return "post_call"


def _source(body: dict[str, Any]) -> SignalSource:
    utm = utm_fields(body)
    return SignalSource(
        source="callrail",
        sub_source=as_text(body.get("source_name") or body.get("source") or body.get("callsource")),
        medium=as_text(body.get("medium")),
        campaign=as_text(body.get("campaign")),
        utm=utm,
    )


def _ids(body: dict[str, Any], *names: str) -> dict[str, str]:
    return {f"callrail_{name}": str(body[name]) for name in names if body.get(name) not in (None, "")}


def _property(body: dict[str, Any], ctx: ParseContext, *number_fields: str) -> PropertyHint:
    """The tracking number, and the company name as the fallback when no property has that number."""
    number = next((body[name] for name in number_fields if body.get(name)), None)
    tracking, _ = normalize_phone(number, ctx.default_country)
    return PropertyHint(tracking_number=tracking, name=as_text(body.get("company_name")))


def _call(raw: RawInbound, ctx: ParseContext, body: dict[str, Any]) -> ParseResult:
    direction = str(body.get("direction") or "inbound").lower()
    if direction != "inbound":
        return ParseResult.ignored("outbound call", parser="callrail")
    answered = body.get("answered")
    call_type = str(body.get("call_type") or "").lower()
    if answered is None and not call_type:
        return ParseResult.ignored("call in progress", parser="callrail")
    missed = answered in (False, "false", "0", 0) or call_type in MISSED_TYPES or body.get("voicemail") is True
    hint = _property(body, ctx, "tracking_phone_number", "trackingnum")
    phone = body.get("customer_phone_number") or body.get("callernum")
    anonymous = anonymous_call(phone, missed=missed, parser="callrail.call", hint=hint)
    if anonymous is not None:
        return anonymous
    signal = LeadSignal(
        event=SignalEvent.missed_call if missed else SignalEvent.call,
        channel=Channel.phone,
        occurred_at=parse_timestamp(body.get("start_time") or body.get("timestamp"), raw.received_at),
        contact=caller_contact(phone, body.get("customer_name"), ctx.default_country),
        source=_source(body),
        property=hint,
        message=as_text(body.get("transcription")),
        caller_name=as_text(body.get("customer_name")),
        external_ids=_ids(body, "id", "resource_id", "person_id", "company_id"),
    )
    return ParseResult.ok(signal, parser="callrail.call")


def _text(raw: RawInbound, ctx: ParseContext, body: dict[str, Any]) -> ParseResult:
    content = as_text(body.get("content"))
    signal = LeadSignal(
        event=keyword_event(content),
        channel=Channel.sms,
        occurred_at=parse_timestamp(body.get("timestamp"), raw.received_at),
        contact=build_contact(phone=body.get("source_number"), region=ctx.default_country),
        source=_source(body),
        property=_property(body, ctx, "destination_number"),
        message=content,
        external_ids=_ids(body, "id", "resource_id", "conversation_id", "person_resource_id"),
    )
    return ParseResult.ok(signal, parser="callrail.text")


def _form(raw: RawInbound, ctx: ParseContext, body: dict[str, Any]) -> ParseResult:
    data = body.get("form_data")
    if not isinstance(data, dict):
        return ParseResult.failed("callrail form without form_data", parser="callrail")
    signal = signal_from_fields(
        data,
        raw=raw,
        ctx=ctx,
        source=_source(body),
        occurred_at=parse_timestamp(body.get("submitted_at"), raw.received_at),
        external_ids=_ids(body, "id", "resource_id", "person_id"),
    )
    landing = as_text(body.get("landing_page_url") or body.get("form_url"))
    if landing:
        signal.external_ids["landing_page_url"] = landing[:300]
    if signal.event == SignalEvent.inquiry and not (signal.contact.email or signal.contact.phone):
        return ParseResult.failed("form has no contact fields", parser="callrail.form")
    return ParseResult.ok(signal, parser="callrail.form")


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    body = decode_form(raw)
    name = event_name(raw, body)
    if name in IN_PROGRESS_EVENTS:
        return ParseResult.ignored("call in progress", parser="callrail")
    if name in IGNORED_EVENTS:
        return ParseResult.ignored(f"callrail {name}", parser="callrail")
    if name == "form_submission":
        return _form(raw, ctx, body)
    if name.startswith("text_message"):
        return _text(raw, ctx, body)
    return _call(raw, ctx, body)
