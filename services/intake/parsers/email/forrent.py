"""ForRent guest cards: bracketed labels (`[Prospect Name]`, `[Moving Date] immediately`)."""

from __future__ import annotations

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact, intent_from_message, parse_bedrooms
from services.intake.parsers.email.fields import Env, domain_is, finish, label_value
from services.intake.parsers.email.mime import InboundEmail
from shared.normalize import parse_move_in
from shared.schemas.signal import PropertyHint, SignalPreferences, SignalSource


def matches(mail: InboundEmail) -> bool:
    return domain_is(mail.from_domain, "forrent.com")


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    message = label_value(lines, "Comments")
    move_in, move_text = parse_move_in(label_value(lines, "Moving Date"), env.reference(mail))
    signal = finish(
        mail,
        env,
        source=SignalSource(source="forrent"),
        contact=build_contact(
            name=label_value(lines, "Prospect Name"),
            email=label_value(lines, "Email"),
            phone=label_value(lines, "Phone"),
            region=env.ctx.default_country,
        ),
        event=intent_from_message(message),
        message=message,
        preferences=SignalPreferences(
            move_in_date=move_in,
            move_in_text=move_text,
            bedrooms=parse_bedrooms(label_value(lines, "# Beds")),
        ),
        property_hint=PropertyHint(name=label_value(lines, "Property Name", "Property")),
    )
    return ParseResult.ok(signal, parser="email.forrent")
