"""ApartmentSearch leads (base64 HTML): `Customer Name:`, `Phone number:`, `Move date:`, `Question:`."""

from __future__ import annotations

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact, parse_bedrooms
from services.intake.parsers.email.fields import Env, domain_is, finish, label_value
from services.intake.parsers.email.mime import InboundEmail
from shared.enums import SignalEvent
from shared.normalize import parse_move_in
from shared.schemas.signal import PropertyHint, SignalPreferences, SignalSource


def matches(mail: InboundEmail) -> bool:
    return domain_is(mail.from_domain, "apartmentsearch.com")


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    question = label_value(lines, "Question")
    move_in, move_text = parse_move_in(label_value(lines, "Move date"), env.reference(mail))
    signal = finish(
        mail,
        env,
        source=SignalSource(source="apartmentsearch"),
        contact=build_contact(
            name=label_value(lines, "Customer Name"),
            email=label_value(lines, "Email"),
            phone=label_value(lines, "Phone number", "Phone"),
            region=env.ctx.default_country,
        ),
        event=SignalEvent.question if question else SignalEvent.inquiry,
        message=question,
        preferences=SignalPreferences(
            move_in_date=move_in,
            move_in_text=move_text,
            bedrooms=parse_bedrooms(label_value(lines, "Bedrooms")),
        ),
        property_hint=PropertyHint(name=label_value(lines, "Property Name", "Property")),
    )
    return ParseResult.ok(signal, parser="email.apartmentsearch")
