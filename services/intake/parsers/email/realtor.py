"""Realtor.com rentals (`RentalRequest@move.com`) and for-sale style leads (`leads@email.realtor.com`).

The rental template writes `I plan to move on Oct 04` without a year: the year comes from the mail date.
"""

from __future__ import annotations

import re

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact, intent_from_message
from services.intake.parsers.email.fields import Env, finish, index_of, label_value
from services.intake.parsers.email.mime import InboundEmail
from shared.normalize import parse_move_in
from shared.schemas.signal import PropertyHint, SignalPreferences, SignalSource

SUBJECT = re.compile(r"^Another Prospective Resident for (?P<community>.*?) from realtor\.com", re.IGNORECASE)


def matches(mail: InboundEmail) -> bool:
    return mail.from_domain in ("move.com", "email.realtor.com", "realtor.com") or bool(SUBJECT.match(mail.subject))


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    subject = SUBJECT.match(mail.subject)
    move_line = next((line for line in lines if re.match(r"^I plan to move", line, re.IGNORECASE)), None)
    move_in, move_text = parse_move_in(
        move_line[len("I plan to move") :].strip() if move_line else label_value(lines, "Move Date", "Move-in Date"),
        env.reference(mail),
    )
    if move_text and move_text.lower().startswith("on "):
        move_text = move_text[3:]
    message = label_value(lines, "Personal Message from Prospect", "Comment", "Comments")
    community_at = index_of(lines, r"^community info$")
    address = lines[community_at + 1] if community_at is not None and community_at + 1 < len(lines) else None
    if address and address.lower() == "consumer info":
        address = None
    community = subject.group("community").strip() if subject else None
    signal = finish(
        mail,
        env,
        source=SignalSource(source="realtor_com"),
        contact=build_contact(
            name=label_value(lines, "Name"),
            first_name=label_value(lines, "First Name"),
            last_name=label_value(lines, "Last Name"),
            email=label_value(lines, "Email Address", "Email"),
            phone=label_value(lines, "Primary Phone", "Phone Number", "Phone"),
            region=env.ctx.default_country,
        ),
        event=intent_from_message(message),
        message=message,
        preferences=SignalPreferences(
            move_in_date=move_in, move_in_text=move_text, unit_type=label_value(lines, "Plan name")
        ),
        property_hint=PropertyHint(name=community or None, address=address),
    )
    return ParseResult.ok(signal, parser="email.realtor")
