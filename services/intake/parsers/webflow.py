"""Webflow `form_submission` webhooks: `payload.data` is keyed by the form's own labels."""

from __future__ import annotations

from services.intake.parsers.base import ParseContext, ParseResult, RawInbound
from services.intake.parsers.common import as_text, decode_json, parse_timestamp
from services.intake.parsers.web_form import honeypot_filled, signal_from_fields
from shared.schemas.signal import SignalSource


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    envelope = decode_json(raw.body)
    if not isinstance(envelope, dict):
        return ParseResult.failed("json body is not an object", parser="webflow")
    trigger = envelope.get("triggerType")
    if trigger is not None and trigger != "form_submission":
        return ParseResult.ignored(f"webflow trigger {str(trigger)[:40]}", parser="webflow")
    payload = envelope.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        return ParseResult.failed("webflow payload without data", parser="webflow")
    data = payload["data"]
    if honeypot_filled(data):
        return ParseResult.ignored("honeypot", parser="webflow")
    ids = {
        key: str(payload[field])
        for key, field in (("webflow_submission_id", "id"), ("form_id", "formId"), ("site_id", "siteId"))
        if payload.get(field)
    }
    signal = signal_from_fields(
        data,
        raw=raw,
        ctx=ctx,
        source=SignalSource(source="webflow", sub_source=as_text(payload.get("name"))),
        occurred_at=parse_timestamp(payload.get("submittedAt"), raw.received_at),
        external_ids=ids,
    )
    if not (signal.contact.email or signal.contact.phone or signal.contact.full_name):
        return ParseResult.failed("form has no contact fields", parser="webflow")
    return ParseResult.ok(signal, parser="webflow")
