"""StreetEasy inquiries (NYC): tour requests and questions; Reply-To is the renter's own address."""

from __future__ import annotations

import re

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact, parse_bedrooms
from services.intake.parsers.email.fields import Env, domain_is, emails_in_text, finish, index_of, label_value
from services.intake.parsers.email.mime import InboundEmail
from shared.enums import SignalEvent
from shared.normalize import find_phone
from shared.schemas.signal import PropertyHint, SignalPreferences, SignalSource

OWN_DOMAINS = ("streeteasy.com", "zillow.com")
SUBJECT = re.compile(r"^(?P<address>.+?)\s+StreetEasy Inquiry From\s+(?P<name>.+)$", re.IGNORECASE)
TOUR = re.compile(r"^(?P<name>.+?) Has Requested a Tour for (?P<address>.+)$", re.IGNORECASE)
QUESTION = re.compile(r"^You Received a Question About (?P<address>.+)$", re.IGNORECASE)
STOP = re.compile(r"^(renter'?s preferred tour|\$[\d,]+|\d+ beds?|studio|\d+ baths?|view listing|reply)", re.I)


def matches(mail: InboundEmail) -> bool:
    return domain_is(mail.from_domain, "streeteasy.com") or bool(SUBJECT.match(mail.subject))


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    subject = SUBJECT.match(mail.subject)
    name = subject.group("name") if subject else None
    address = subject.group("address") if subject else None
    event, message = SignalEvent.inquiry, None
    tour_at = index_of(lines, TOUR.pattern)
    question_at = index_of(lines, QUESTION.pattern)
    if tour_at is not None:
        found = TOUR.match(lines[tour_at])
        if found:
            event, name, address = (
                SignalEvent.tour_request,
                name or found.group("name"),
                address or found.group("address"),
            )
    elif question_at is not None:
        event = SignalEvent.question
        collected = []
        for line in lines[question_at + 1 :]:
            if STOP.match(line) or "@" in line:
                break
            collected.append(line)
        message = "\n".join(collected).strip() or None
    email = mail.reply_to_addr or next(iter(emails_in_text("\n".join(lines), OWN_DOMAINS)), None)
    phone = find_phone("\n".join(line for line in lines if "@" in line or line.startswith("+")))[0]
    phone = phone or find_phone("\n".join(lines))[0]
    beds_line = next((line for line in lines if re.match(r"^(\d+ beds?|studio)$", line, re.I)), None)
    tour_kind = label_value(lines, "Renter'?s Preferred Tour")
    signal = finish(
        mail,
        env,
        source=SignalSource(source="streeteasy"),
        contact=build_contact(name=name, email=email, phone=phone, region=env.ctx.default_country),
        event=event,
        message=message,
        preferences=SignalPreferences(
            bedrooms=parse_bedrooms(beds_line) if beds_line else None,
            preferred_tour_times=[tour_kind] if tour_kind else [],
        ),
        property_hint=PropertyHint(address=address),
    )
    return ParseResult.ok(signal, parser="email.streeteasy")
