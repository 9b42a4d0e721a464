"""Rent.com and ApartmentGuide (RentPath) leads.

Reply-To is a `reply-...@email.rent.com` relay; the real address is the `Email:` row. Mobile leads may
omit email and phone entirely: the name and property still make a signal.
"""

from __future__ import annotations

import re

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact, compact, intent_from_message
from services.intake.parsers.email.fields import Env, domain_is, finish, label_value, mailto_addresses
from services.intake.parsers.email.mime import InboundEmail
from shared.normalize import is_relay_email, parse_move_in
from shared.schemas.signal import PropertyHint, SignalPreferences, SignalSource

SUBJECT = re.compile(r"^(?P<brand>Rent\.com|AG) Lead from (?P<name>.+?)\s*\((?P<property>.*)\)\s*$", re.IGNORECASE)
OWN = ("rent.com", "apartmentguide.com")


def matches(mail: InboundEmail) -> bool:
    domain = mail.from_domain
    return domain_is(domain, "rent.com", "apartmentguide.com") or bool(SUBJECT.match(mail.subject))


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    subject = SUBJECT.match(mail.subject)
    is_ag = "apartmentguide" in mail.from_domain or bool(subject and subject.group("brand").upper() == "AG")
    info = next((line[16:] for line in lines if line.lower().startswith("information for ")), None)
    name = info or (subject.group("name") if subject else None)
    email = label_value(lines, "Email")
    if not email:
        found = [a for a in mailto_addresses(mail, OWN) if not is_relay_email(a)]
        email = found[0] if found else None
    relay = mail.reply_to_addr if is_relay_email(mail.reply_to_addr) else None
    message = label_value(lines, "Comments")
    initiated = label_value(lines, "Initiated From")
    prop_name = label_value(lines, "Property Name") or (subject.group("property") if subject else None)
    address = compact([label_value(lines, "Property Address"), label_value(lines, "Property City, State")])
    move_in, move_text = parse_move_in(label_value(lines, "Move Date"), env.reference(mail))
    ids = {}
    if initiated:
        ids["initiated_from"] = initiated.lower()
    signal = finish(
        mail,
        env,
        source=SignalSource(source="apartment_guide" if is_ag else "rent_com", medium=initiated and initiated.lower()),
        contact=build_contact(
            name=name,
            email=email,
            reply_to=relay,
            phone=label_value(lines, r"\*?Phone"),
            region=env.ctx.default_country,
        ),
        event=intent_from_message(message),
        message=message,
        preferences=SignalPreferences(move_in_date=move_in, move_in_text=move_text),
        property_hint=PropertyHint(listing_id=label_value(lines, "Property ID"), name=prop_name, address=address),
        external_ids=ids,
    )
    return ParseResult.ok(signal, parser="email.rentpath")
