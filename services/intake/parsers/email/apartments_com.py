"""Apartments.com / CoStar (and ApartmentList) lead mail.

Variant (a) is a guest card with `Name:` / `Email:` / `Phone:` / `Beds/Baths:` / `Move Date:` rows.
Variant (b), "You've received a new lead!", carries the property address and a link, sometimes with the
renter in Reply-To: it still becomes a signal (an inquiry with a property hint, and the contact when there
is one) so nobody loses the lead; the address line is read in every case.
"""

from __future__ import annotations

import re

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact, intent_from_message, parse_bedrooms
from services.intake.parsers.email.fields import Env, domain_is, finish, index_of, label_value
from services.intake.parsers.email.mime import InboundEmail
from shared.normalize import parse_move_in
from shared.schemas.signal import PropertyHint, SignalPreferences, SignalSource

# "1200 Lakeview Ave Unit 3, Chicago, IL 60614": a house number, then words; never a "Label: value" row
STREET_LINE = re.compile(
    r"^\d{1,6}[A-Za-z]?(?:-\d+)?\s+[A-Za-z][^:]*"
    r"(?:\b(?:st|street|ave|avenue|rd|road|blvd|boulevard|dr|drive|ln|lane|way|ct|court|pl|place|pkwy|parkway|"
    r"ter|terrace|cir|circle|hwy|highway|sq|square|trl|trail|apt|unit)\b|\b[A-Z]{2}\s+\d{5}\b)[^:]*$",
    re.IGNORECASE,
)
NAME_LINE = re.compile(r"^(?:new|hot) lead from (?P<name>.+?)\s*\*?$", re.IGNORECASE)


def matches(mail: InboundEmail) -> bool:
    domain = mail.from_domain
    return domain_is(domain, "apartments.com", "apartmentlist.com")


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    source = "apartment_list" if "apartmentlist" in mail.from_domain else "apartments_com"
    heading = next((NAME_LINE.match(line) for line in [mail.subject, *lines] if NAME_LINE.match(line)), None)
    name = label_value(lines, "Name") or (heading.group("name") if heading else None)
    email = label_value(lines, "Email")
    if email is None and mail.reply_to_addr and not mail.reply_to_addr.endswith("apartments.com"):
        email = mail.reply_to_addr
    beds_baths = label_value(lines, r"Beds/Baths", "Bedrooms", "Beds")
    bedrooms = parse_bedrooms(beds_baths.split("/", 1)[0]) if beds_baths else None
    move_in, move_text = parse_move_in(label_value(lines, "Move Date", "Move-in Date"), env.reference(mail))
    message = label_value(lines, "Comments", "Message")
    address = label_value(lines, "Property", "Property Address")
    if address is None:
        # the notice's address line, read whether or not a name or a Reply-To came with it
        view_at = index_of(lines, r"^view message$")
        address = next((line for line in lines[: view_at or len(lines)] if STREET_LINE.match(line)), None)
    signal = finish(
        mail,
        env,
        source=SignalSource(source=source),
        contact=build_contact(
            name=name, email=email, phone=label_value(lines, "Phone"), region=env.ctx.default_country
        ),
        event=intent_from_message(message),
        message=message,
        preferences=SignalPreferences(move_in_date=move_in, move_in_text=move_text, bedrooms=bedrooms),
        property_hint=PropertyHint(address=address),
    )
    return ParseResult.ok(signal, parser="email.apartments_com")
