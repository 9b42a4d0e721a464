"""Twilio inbound SMS: a message, or a carrier keyword (STOP / START / HELP) that changes consent."""

from __future__ import annotations

from services.intake.parsers.base import ParseContext, ParseResult, RawInbound
from services.intake.parsers.common import as_text, build_contact, decode_form, keyword_event
from shared.enums import Channel
from shared.normalize import normalize_phone
from shared.schemas.signal import LeadSignal, PropertyHint, SignalSource


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    fields = {k: as_text(v) or "" for k, v in decode_form(raw).items()}
    fields = {**{k: v for k, v in raw.query.items() if k not in fields}, **fields}  # GET webhooks
    sid = fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid")
    if not sid:
        return ParseResult.failed("twilio sms without MessageSid", parser="twilio_sms")
    status = (fields.get("SmsStatus") or "received").lower()
    if status not in ("received", "receiving"):
        return ParseResult.ignored("sms status callback", parser="twilio_sms")
    body = fields.get("Body") or None
    media = [fields[f"MediaUrl{i}"] for i in range(10) if fields.get(f"MediaUrl{i}")]
    tracking, _ = normalize_phone(fields.get("To"), ctx.default_country)
    ids = {"message_sid": sid}
    if fields.get("MessagingServiceSid"):
        ids["messaging_service_sid"] = fields["MessagingServiceSid"]
    if media:
        ids["media_count"] = str(len(media))
    signal = LeadSignal(
        event=keyword_event(body, fields.get("OptOutType")),
        channel=Channel.sms,
        occurred_at=raw.received_at,
        contact=build_contact(phone=fields.get("From"), region=ctx.default_country),
        source=SignalSource(source="sms", sub_source="twilio"),
        property=PropertyHint(tracking_number=tracking),
        message=body,
        external_ids=ids,
    )
    return ParseResult.ok(signal, parser="twilio_sms")
