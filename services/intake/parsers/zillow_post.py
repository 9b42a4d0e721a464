"""Zillow / HotPads lead callback: one urlencoded POST per lead (HotPads partner leadCallback spec).

Only `listingId` and `email` are guaranteed. `incomeYearly` and friends are undocumented and never read
as a budget; `numBedroomsSought=0` is a studio.
"""

from __future__ import annotations

from services.intake.parsers.base import ParseContext, ParseResult, RawInbound
from services.intake.parsers.common import (
    as_text,
    build_contact,
    compact,
    decode_form,
    intent_from_message,
    parse_bedrooms,
)
from shared.enums import Channel
from shared.normalize import parse_move_in
from shared.schemas.signal import LeadSignal, PropertyHint, SignalPreferences, SignalSource


def _float(value: object) -> float | None:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    fields = {k: as_text(v) for k, v in decode_form(raw).items()}
    if not fields.get("listingId") and not fields.get("email"):
        return ParseResult.failed("zillow callback without listingId or email", parser="zillow_post")
    move_in, move_text = parse_move_in(fields.get("movingDate") or fields.get("moveInTimeframe"), raw.received_at)
    street = compact([fields.get("listingStreet"), fields.get("listingUnit")], sep=" ")
    region = compact([fields.get("listingState"), fields.get("listingPostalCode")], sep=" ")
    lease = fields.get("leaseLengthMonths")
    message = fields.get("message") or fields.get("introduction")
    signal = LeadSignal(
        event=intent_from_message(message),
        channel=Channel.ils,
        occurred_at=raw.received_at,
        contact=build_contact(
            name=fields.get("name"),
            email=fields.get("email"),
            phone=fields.get("phone"),
            region=ctx.default_country,
        ),
        source=SignalSource(source="zillow", sub_source="lead_callback"),
        property=PropertyHint(
            listing_id=fields.get("listingId"),
            address=compact([street, fields.get("listingCity"), region]),
        ),
        preferences=SignalPreferences(
            move_in_date=move_in,
            move_in_text=move_text,
            bedrooms=parse_bedrooms(fields.get("numBedroomsSought")),
            bathrooms=_float(fields.get("numBathroomsSought")),
            lease_length_months=int(lease) if lease and lease.isdigit() else None,
        ),
        message=message,
    )
    return ParseResult.ok(signal, parser="zillow_post")
