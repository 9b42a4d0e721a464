"""RingCentral telephony-session notifications: a missed inbound party becomes a missed call.

RingCentral does not document one missed-call flag, so a party counts as missed when it carries
`missedCall: true` or ended in voicemail. A subscription made with the `missedCall=true` event filter (the
setup docs/intake.md asks for) only notifies missed calls, so there a finished inbound party without the
flag is trusted as missed too; an explicit `missedCall: false` never is. Everything else (ringing, answered,
outbound) is ignored. The callee's name is the property hint when the called number matches no property.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from services.intake.parsers.base import ParseContext, ParseResult, RawInbound
from services.intake.parsers.common import anonymous_call, as_text, caller_contact, decode_json, parse_timestamp
from shared.enums import Channel, SignalEvent
from shared.normalize import normalize_phone
from shared.schemas.signal import LeadSignal, PropertyHint, SignalSource

# party status codes of a call that is over (a missed-call filter also notifies the ringing states)
FINISHED = frozenset({"disconnected", "gone", "voicemail"})


def filters_missed_calls(envelope: dict[str, Any]) -> bool:
    """True when the notification's event filter is `…/telephony/sessions?missedCall=true`."""
    try:
        query = parse_qs(urlsplit(str(envelope.get("event") or "")).query)
    except ValueError:
        return False
    return any(value.strip().lower() == "true" for value in query.get("missedCall", []))


def _missed_party(parties: list[Any], trust_filter: bool) -> dict[str, Any] | None:
    for party in parties:
        if not isinstance(party, dict) or str(party.get("direction", "")).lower() != "inbound":
            continue
        status: dict[str, Any] = party["status"] if isinstance(party.get("status"), dict) else {}
        code = str(status.get("code", "")).lower()
        flag = party.get("missedCall")
        if flag is True or code == "voicemail":
            return party
        if trust_filter and flag is None and code in FINISHED:
            return party
    return None


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    envelope = decode_json(raw.body)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("body"), dict):
        return ParseResult.failed("ringcentral notification without body", parser="ringcentral")
    body = envelope["body"]
    parties = body.get("parties") if isinstance(body.get("parties"), list) else []
    party = _missed_party(parties, filters_missed_calls(envelope))
    if party is None:
        return ParseResult.ignored("no missed party", parser="ringcentral")
    caller: dict[str, Any] = party["from"] if isinstance(party.get("from"), dict) else {}
    called: dict[str, Any] = party["to"] if isinstance(party.get("to"), dict) else {}
    tracking, _ = normalize_phone(called.get("phoneNumber"), ctx.default_country)
    hint = PropertyHint(tracking_number=tracking, name=as_text(called.get("name")))
    if not caller.get("phoneNumber") and caller.get("extensionId"):
        return ParseResult.ignored("internal call", parser="ringcentral")  # a colleague's extension, no renter
    anonymous = anonymous_call(caller.get("phoneNumber"), missed=True, parser="ringcentral", hint=hint)
    if anonymous is not None:
        return anonymous
    ids = {
        name: str(value)
        for name, value in (
            ("ringcentral_uuid", envelope.get("uuid")),
            ("telephony_session_id", body.get("telephonySessionId")),
            ("session_id", body.get("sessionId")),
        )
        if value
    }
    signal = LeadSignal(
        event=SignalEvent.missed_call,
        channel=Channel.phone,
        occurred_at=parse_timestamp(body.get("eventTime") or envelope.get("timestamp"), raw.received_at),
        contact=caller_contact(caller.get("phoneNumber"), caller.get("name"), ctx.default_country),
        source=SignalSource(source="phone", sub_source="ringcentral"),
        property=hint,
        caller_name=as_text(caller.get("name")),
        external_ids=ids,
    )
    return ParseResult.ok(signal, parser="ringcentral")
