"""Zumper / PadMapper leads: HTML-only, sent from a per-lead relay on `zlead.co`.

The display name carries `[me.com]`, the domain of the renter's real address; we keep it as a hint in
external_ids but never guess the address. The relay goes to `contact.reply_to` only.
"""

from __future__ import annotations

import re

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact, intent_from_message, parse_bedrooms
from services.intake.parsers.email.fields import Env, finish, index_of, mailto_addresses, tel_numbers
from services.intake.parsers.email.mime import InboundEmail
from shared.normalize import find_phone, is_relay_email, split_name
from shared.schemas.signal import PropertyHint, SignalPreferences, SignalSource

SUBJECT = re.compile(r"^(?P<brand>zumper|padmapper) tenant lead for (?P<building>.+?)(?::\s*(?P<beds>.+))?$", re.I)
INTERESTED = re.compile(r"^the following lead is interested in (?P<what>.+)$", re.IGNORECASE)
BRACKET = re.compile(r"\\?\[(?P<domain>[^\]\\]+)\\?\]")
STOP = re.compile(r"^(reply to lead|view .*|zumper|padmapper|you have received)", re.IGNORECASE)


def matches(mail: InboundEmail) -> bool:
    return mail.from_domain == "zlead.co" or bool(SUBJECT.match(mail.subject))


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    subject = SUBJECT.match(mail.subject)
    text = " ".join([mail.subject, mail.from_name or "", *lines[:3]]).lower()
    brand = "padmapper" if "padmapper" in text else "zumper"
    relay = next((a for a in (mail.reply_to_addr, mail.from_addr) if is_relay_email(a)), None)
    relay = relay or next((a for a in mailto_addresses(mail) if is_relay_email(a)), None)
    raw_name = mail.reply_to_name or mail.from_name
    bracket = BRACKET.search(raw_name or "")
    interested_at = index_of(lines, INTERESTED.pattern)
    what = INTERESTED.match(lines[interested_at]) if interested_at is not None else None
    building, beds_text = None, None
    if subject:
        building, beds_text = subject.group("building"), subject.group("beds")
    elif what:
        building, _, beds_text = what.group("what").partition(":")
    message_lines: list[str] = []
    name_line = None
    if interested_at is not None:
        for line in lines[interested_at + 1 :]:
            if name_line is None and split_name(line)[0] and not find_phone(line)[0]:
                name_line = line
                continue
            if STOP.match(line) or find_phone(line)[0] or "@" in line:
                continue
            message_lines.append(line)
    message = "\n".join(message_lines).strip() or None
    phones = tel_numbers(mail, env.ctx.default_country)
    phone = phones[0][0] if phones else find_phone("\n".join(lines))[0]
    ids = {"email_domain_hint": bracket.group("domain").lower()} if bracket else {}
    signal = finish(
        mail,
        env,
        source=SignalSource(source=brand),
        contact=build_contact(name=raw_name or name_line, reply_to=relay, phone=phone, region=env.ctx.default_country),
        event=intent_from_message(message),
        message=message,
        preferences=SignalPreferences(bedrooms=parse_bedrooms(beds_text) if beds_text else None),
        property_hint=PropertyHint(name=building.strip() if building else None),
        external_ids=ids,
    )
    return ParseResult.ok(signal, parser="email.zumper")
