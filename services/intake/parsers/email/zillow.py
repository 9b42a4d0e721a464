"""Zillow Group lead mail: Zillow Rental Network (Zillow / Trulia / HotPads feeds) and Rental Manager.

Rental Network mail is HTML-only with the renter's real address in Reply-To (2017 copies had none: read
the `mailto:` button or the h-card). Rental Manager mail comes from a per-conversation relay on
`convo.zillow.com`, never the renter's address; its phone hides in a link's `phone=` parameter and its
`Not answered` profile rows mean unknown. The listing block says what unit was asked about; its price and
the renter's yearly income are never a budget.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup

from services.intake.parsers.base import ParseResult
from services.intake.parsers.common import build_contact, intent_from_message, parse_bedrooms, parse_bool
from services.intake.parsers.email.fields import (
    Env,
    emails_in_text,
    finish,
    index_of,
    label_value,
    link_param,
    mailto_addresses,
    strip_quotes,
    tel_numbers,
)
from services.intake.parsers.email.mime import InboundEmail
from shared.enums import SignalEvent
from shared.normalize import find_phone, parse_move_in
from shared.schemas.signal import PropertyHint, SignalPreferences, SignalSource

ZILLOW_DOMAINS = ("zillow.com", "zillowrentals.com", "zillowgroup.com", "trulia.com", "hotpads.com")
SAYS = re.compile(r"^(?P<name>.+?)\s+(?:is interested in (?P<plan>.+?) and )?says:?$", re.IGNORECASE)
STOP_LABELS = re.compile(
    r"^(income and time frame|credit score|yearly income|income|move-?in period|move in|lease length|pets|"
    r"your listing|for rent|reply to .*|send application|see .* contact info|about .*|"
    r"regarding your listing.*)$",
    re.IGNORECASE,
)
BEDS = re.compile(
    r"(?:(?P<low>\d+)\s+to\s+)?(?P<n>\d+|studio)?\s*(?:bedrooms?|beds?)?\s*,?\s*(?P<ba>[\d.]+)?\s+bathrooms?",
    re.I,
)


def is_rental_manager(mail: InboundEmail) -> bool:
    return mail.from_domain == "convo.zillow.com" or (mail.reply_to_addr or "").endswith("@convo.zillow.com")


def matches(mail: InboundEmail) -> bool:
    if is_rental_manager(mail):
        return True
    subject = mail.subject.lower()
    return mail.from_domain in ("zillowrentals.com", "zillow.com") and (
        "zillow group rentals contact" in subject
        or "zillow rentals inquiry" in mail.text.lower()
        or "says:" in mail.text
    )


def _message_after(lines: list[str], start: int) -> str | None:
    collected = []
    for line in lines[start + 1 :]:
        if STOP_LABELS.match(line) or "@" in line or find_phone(line)[0]:
            break
        collected.append(line)
    return strip_quotes("\n".join(collected))


def _listing(lines: list[str]) -> tuple[int | None, float | None, str | None]:
    """(bedrooms, bathrooms, address) from the `Your listing` block."""
    start = index_of(lines, r"^your listing$") or index_of(lines, r"^for rent$")
    if start is None:
        return None, None, None
    for offset, line in enumerate(lines[start : start + 8]):
        match = BEDS.search(line)
        if not match:
            continue
        beds = match.group("low") or match.group("n")
        bedrooms = parse_bedrooms(beds) if beds else None
        baths = float(match.group("ba")) if match.group("ba") else None
        after = lines[start + offset + 1] if start + offset + 1 < len(lines) else None
        address = after if after and re.search(r"\d", after) and "zillow" not in after.lower() else None
        return bedrooms, baths, address
    return None, None, None


def _brand(lines: list[str]) -> str:
    for line in lines[:6]:
        match = re.match(r"^(zillow|trulia|hotpads) rentals inquiry", line, re.IGNORECASE)
        if match:
            return match.group(1).lower()
    return "zillow"


def _hcard(mail: InboundEmail) -> dict[str, str]:
    """2017-2020 template: microformat classes carry name, email and phone."""
    if not mail.html or "h-card" not in mail.html:
        return {}
    soup = BeautifulSoup(mail.html, "html.parser")
    found = {}
    for key in ("p-name", "p-email", "p-tel"):
        node = soup.find(class_=key)
        if node is not None and node.get_text(strip=True):
            found[key] = node.get_text(" ", strip=True)
    return found


def _rental_network(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    says = index_of(lines, r"\bsays:?$")
    match = SAYS.match(lines[says]) if says is not None else None
    hcard = _hcard(mail)
    # the legacy layout's p-name may hold the whole "<Name> is interested in <plan> and says:" sentence
    card_says = SAYS.match(hcard["p-name"]) if "p-name" in hcard else None
    match = match or card_says
    name = (card_says.group("name") if card_says else hcard.get("p-name")) or (match.group("name") if match else None)
    message = _message_after(lines, says) if says is not None else None
    region = env.ctx.default_country
    email = mail.reply_to_addr
    if not email or email.endswith(ZILLOW_DOMAINS):
        candidates = mailto_addresses(mail, ZILLOW_DOMAINS) or emails_in_text(
            hcard.get("p-email", "") or "\n".join(lines), ZILLOW_DOMAINS
        )
        email = candidates[0] if candidates else None
    phones = tel_numbers(mail, region)
    phone = phones[0][0] if phones else hcard.get("p-tel")
    if not phone:
        end = index_of(lines, r"^your listing$") or len(lines)
        phone = find_phone("\n".join(lines[(says or 0) : end]), region)[0]
    bedrooms, baths, address = _listing(lines)
    if not address and ":" in mail.subject:
        address = mail.subject.split(":", 1)[1].strip() or None
    move_in, move_text = parse_move_in(label_value(lines, "Move-in period", "Move in"), env.reference(mail))
    lease = label_value(lines, "Lease length")
    pets_text = label_value(lines, "Pets")
    signal = finish(
        mail,
        env,
        source=SignalSource(source=_brand(lines), sub_source="zillow_rental_network"),
        contact=build_contact(name=name, email=email, phone=phone, region=region),
        event=intent_from_message(message),
        message=message,
        preferences=SignalPreferences(
            move_in_date=move_in,
            move_in_text=move_text,
            bedrooms=bedrooms,
            bathrooms=baths,
            pets=parse_bool(pets_text),
            pets_text=pets_text,
            unit_type=match.group("plan") if match and match.group("plan") else None,
            lease_length_months=_months(lease),
        ),
        property_hint=PropertyHint(address=address),
    )
    return ParseResult.ok(signal, parser="email.zillow")


def _months(text: str | None) -> int | None:
    match = re.search(r"(\d+)\s*month", text or "", re.IGNORECASE)
    return int(match.group(1)) if match else None


def _int(text: str | None) -> int | None:
    match = re.search(r"\d+", text or "")
    return int(match.group(0)) if match else None


def _rental_manager(mail: InboundEmail, env: Env) -> ParseResult:
    lines = mail.body_lines
    relay = mail.reply_to_addr if (mail.reply_to_addr or "").endswith("@convo.zillow.com") else mail.from_addr
    template_b = index_of(lines, r"^renter'?s name$") is not None
    if template_b:
        name = label_value(lines, "RENTER'?S NAME")
        message = label_value(lines, "RENTER'?S MESSAGE")
        address = label_value(lines, "Regarding your listing at")
        event = SignalEvent.reply
    else:
        says = index_of(lines, r"\bsays:?$")
        match = SAYS.match(lines[says]) if says is not None else None
        name = match.group("name") if match else None
        message = _message_after(lines, says) if says is not None else None
        new_at = index_of(lines, r"^new message$")
        address = lines[new_at + 1] if new_at is not None and new_at + 1 < len(lines) else None
        subject_match = re.match(r"^.+? is requesting information about (.+)$", mail.subject, re.IGNORECASE)
        address = (subject_match.group(1).strip() if subject_match else None) or address
        event = (
            SignalEvent.application
            if re.search(r"requesting an application", mail.subject, re.IGNORECASE)
            else intent_from_message(message)
        )
    about = index_of(lines, r"^about\b") or len(lines)
    profile = lines[about:]
    move_in, move_text = parse_move_in(label_value(profile, "Move in"), env.reference(mail))
    pets_text = label_value(profile, "Pets")
    pets_known = pets_text if pets_text and pets_text.lower() != "not answered" else None
    signal = finish(
        mail,
        env,
        source=SignalSource(source="zillow_rental_manager"),
        contact=build_contact(
            name=name or mail.from_name,
            reply_to=relay,
            phone=link_param(mail, "phone"),
            region=env.ctx.default_country,
        ),
        event=event,
        message=message,
        preferences=SignalPreferences(
            move_in_date=move_in,
            move_in_text=move_text,
            bedrooms=parse_bedrooms(label_value(profile, "Number of Bedrooms")) if profile else None,
            pets=parse_bool(pets_known),
            pets_text=pets_known,
            lease_length_months=_months(label_value(profile, "Lease Length")),
            occupants=_int(label_value(profile, "Number of Occupants")),
        ),
        property_hint=PropertyHint(address=address),
    )
    return ParseResult.ok(signal, parser="email.zillow_rental_manager")


def parse(mail: InboundEmail, env: Env) -> ParseResult:
    if is_rental_manager(mail):
        return _rental_manager(mail, env)
    return _rental_network(mail, env)
