"""Twilio Voice webhooks: the missed call is what matters.

Inbound calls are answered by TwiML, so the parent call's own status says nothing about a person picking
up. A missed call is the `<Dial action>` callback with `DialCallStatus` no-answer/busy/failed, or a
child-leg status callback with `CallStatus` no-answer/busy/failed. A dial that completed (someone talked
to the renter) becomes a `call` event so the timeline shows the touch; the first incoming-call webhook
and the parent's own `completed` are ignored. `To` is our tracking number: the property hint. A withheld
number (`+266696687`, `anonymous`, none) is no contact: the call is ignored as "anonymous caller".
`CallerName` (caller-ID lookup) names the contact only when it is not a carrier stand-in.
"""

from __future__ import annotations

from services.intake.parsers.base import ParseContext, ParseResult, RawInbound
from services.intake.parsers.common import anonymous_call, as_text, caller_contact, decode_form
from shared.enums import Channel, SignalEvent
from shared.normalize import normalize_phone
from shared.schemas.signal import LeadSignal, PropertyHint, SignalSource

MISSED = frozenset({"no-answer", "busy", "failed"})
ANSWERED = frozenset({"completed", "answered"})


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    fields = {k: as_text(v) or "" for k, v in decode_form(raw).items()}
    call_sid = fields.get("CallSid")
    if not call_sid:
        return ParseResult.failed("twilio voice without CallSid", parser="twilio_voice")
    dial_status = fields.get("DialCallStatus", "").lower()
    call_status = fields.get("CallStatus", "").lower()
    direction = fields.get("Direction", "inbound").lower()
    child_leg = direction.startswith("outbound-dial")
    if direction.startswith("outbound") and not child_leg:
        return ParseResult.ignored("outbound call", parser="twilio_voice")

    if dial_status:
        status = dial_status
    elif child_leg:
        status = call_status
    else:
        return ParseResult.ignored("call status without dial outcome", parser="twilio_voice")
    if status in MISSED:
        event = SignalEvent.missed_call
    elif status in ANSWERED:
        event = SignalEvent.call
    else:
        return ParseResult.ignored("call in progress", parser="twilio_voice")

    # On a child leg `To` is the agent's phone; the tracking number is only known on the parent leg.
    tracking, _ = (None, None) if child_leg else normalize_phone(fields.get("To"), ctx.default_country)
    hint = PropertyHint(tracking_number=tracking)
    caller = fields.get("From") or fields.get("Caller")
    anonymous = anonymous_call(caller, missed=event == SignalEvent.missed_call, parser="twilio_voice", hint=hint)
    if anonymous is not None:
        return anonymous
    ids = {"call_sid": call_sid, "call_status": status}
    for key, name in (("ParentCallSid", "parent_call_sid"), ("DialCallSid", "dial_call_sid")):
        if fields.get(key):
            ids[name] = fields[key]
    signal = LeadSignal(
        event=event,
        channel=Channel.phone,
        occurred_at=raw.received_at,
        contact=caller_contact(caller, fields.get("CallerName"), ctx.default_country),
        source=SignalSource(source="phone", sub_source="twilio"),
        property=hint,
        caller_name=fields.get("CallerName") or None,
        external_ids=ids,
    )
    return ParseResult.ok(signal, parser="twilio_voice")
