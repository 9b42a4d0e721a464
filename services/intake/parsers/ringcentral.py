"""RingCentral telephony-session notifications: a missed inbound party becomes a missed call.

RingCentral does not document one missed-call flag, so a party counts as missed when it carries
`missedCall: true` or ended in voicemail. Everything else (ringing, answered, outbound) is ignored.
"""

from __future__ import annotations

from typing import Any

from services.intake.parsers.base import ParseContext, ParseResult, RawInbound
from services.intake.parsers.common import as_text, build_contact, decode_json, parse_timestamp
from shared.enums import Channel, SignalEvent
from shared.normalize import normalize_phone
from shared.schemas.signal import LeadSignal, PropertyHint, SignalSource


def _missed_party(parties: list[Any]) -> dict[str, Any] | None:
    for party in parties:
        if not isinstance(party, dict) or str(party.get("direction", "")).lower() != "inbound":
            continue
        status: dict[str, Any] = party["status"] if isinstance(party.get("status"), dict) else {}
        if party.get("missedCall") is True or str(status.get("code", "")).lower() == "voicemail":
            return party
    return None


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    envelope = decode_json(raw.body)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("body"), dict):
        return ParseResult.failed("ringcentral notification without body", parser="ringcentral")
    body = envelope["body"]
    parties = body.get("parties") if isinstance(body.get("parties"), list) else []
    party = _missed_party(parties)
    if party is None:
        return ParseResult.ignored("no missed party", parser="ringcentral")
    caller: dict[str, Any] = party["from"] if isinstance(party.get("from"), dict) else {}
    called: dict[str, Any] = party["to"] if isinstance(party.get("to"), dict) else {}
    tracking, _ = normalize_phone(called.get("phoneNumber"), ctx.default_country)
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
        contact=build_contact(
            name=as_text(caller.get("name")), phone=caller.get("phoneNumber"), region=ctx.default_country
        ),
        source=SignalSource(source="phone", sub_source="ringcentral"),
        property=PropertyHint(tracking_number=tracking),
        external_ids=ids,
    )
    return ParseResult.ok(signal, parser="ringcentral")
