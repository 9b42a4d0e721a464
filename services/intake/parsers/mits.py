"""MITS LeadManagement XML guest cards (Yardi / ResMan / RealPage style), read with defusedxml.

The XML arrives as a form field `Xml` or as the raw body. Namespaces vary by vendor, so elements are
matched by local name. Feeds carry garbage (`<Email>0</Email>`, move-ins a century ago): the normalizers
turn those into None instead of failing the whole card.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from services.intake.parsers.base import ParseContext, ParseError, ParseResult, RawInbound
from services.intake.parsers.common import (
    as_text,
    build_contact,
    decode_form,
    media_type,
    parse_bedrooms,
    parse_timestamp,
)
from shared.enums import Channel, SignalEvent
from shared.normalize import parse_money_range, parse_move_in
from shared.schemas.signal import LeadSignal, PropertyHint, SignalPreferences, SignalSource

KNOWN_SOURCES = {
    "apartmentscom": "apartments_com",
    "apartments": "apartments_com",
    "zillow": "zillow",
    "trulia": "trulia",
    "hotpads": "hotpads",
    "rentcom": "rent_com",
    "apartmentguide": "apartment_guide",
    "realtorcom": "realtor_com",
    "zumper": "zumper",
    "padmapper": "padmapper",
    "rentcafe": "rentcafe",
    "forrent": "forrent",
    "forrentcom": "forrent",
    "apartmentsearch": "apartmentsearch",
    "streeteasy": "streeteasy",
    "facebook": "facebook_ads",
}
EVENT_TYPES = {
    "appointment": SignalEvent.tour_request,
    "show": SignalEvent.tour_request,
    "application": SignalEvent.application,
    "call": SignalEvent.call,
}
PHONE_PREFERENCE = ("cell", "mobile", "personal", "home", "office")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(node: Element | None, *path: str) -> Element | None:
    for name in path:
        if node is None:
            return None
        node = next((child for child in node if _local(child.tag) == name), None)
    return node


def _all(node: Element | None, name: str) -> list[Element]:
    return [child for child in node if _local(child.tag) == name] if node is not None else []


def _text(node: Element | None, *path: str) -> str | None:
    found = _find(node, *path) if path else node
    return as_text(found.text) if found is not None and found.text else None


def _id_key(id_type: str) -> str:
    """`ThirdPartyID` -> `third_party_id`, `ProspectID` -> `prospect_id`."""
    spaced = re.sub(r"ID$", "_id", id_type)
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", spaced).lower().replace("__", "_")


def _xml_bytes(raw: RawInbound) -> bytes:
    if media_type(raw.content_type) in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields = decode_form(raw)
        for key in ("Xml", "xml", "XML"):
            if fields.get(key):
                return str(fields[key]).encode()
        raise ParseError("mits form without Xml field")
    return raw.body


def _parse_xml(data: bytes) -> Element:
    try:
        root: Element = SafeET.fromstring(data)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise ParseError("malformed mits xml") from exc
    return root


def _source(transaction_source: str | None) -> SignalSource:
    key = re.sub(r"[^a-z]", "", (transaction_source or "").casefold())
    known = KNOWN_SOURCES.get(key)
    if known:
        return SignalSource(source=known, sub_source="mits", medium="guest_card")
    return SignalSource(source="mits", sub_source=transaction_source)


def _range(node: Element | None) -> tuple[Any, Any]:
    if node is None:
        return None, None
    exact = node.get("Exact") or (node.text or "").strip() or None
    return node.get("Min") or exact, node.get("Max") or exact


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    root = _parse_xml(_xml_bytes(raw))
    prospect = next((el for el in root.iter() if _local(el.tag) == "Prospect"), None)
    if prospect is None:
        return ParseResult.failed("mits xml without Prospect", parser="mits")
    customers = _all(_find(prospect, "Customers"), "Customer")
    customer = next((c for c in customers if (c.get("Type") or "").lower() == "prospect"), None)
    customer = customer or (customers[0] if customers else None)
    if customer is None:
        return ParseResult.failed("mits prospect without Customer", parser="mits")

    ids: dict[str, str] = {}
    listing_id = None
    for ident in [*_all(customer, "Identification"), *_all(prospect, "Identification")]:
        id_type, value = (ident.get("IDType") or "").strip(), (ident.get("IDValue") or "").strip()
        if not value:
            continue
        if id_type == "PropertyID":
            listing_id = listing_id or value
        elif id_type:
            ids.setdefault(_id_key(id_type), value)

    phones = {(p.get("PhoneType") or "").lower(): _text(p, "PhoneNumber") for p in _all(customer, "Phone")}
    phone = next((phones[t] for t in PHONE_PREFERENCE if phones.get(t)), None)
    phone = phone or next((v for v in phones.values() if v), None)

    prefs = _find(prospect, "CustomerPreferences")
    events = _all(_find(prospect, "Events"), "Event")
    event = events[0] if events else None
    when = parse_timestamp(event.get("EventDate") if event is not None else None, raw.received_at)
    if event is not None:
        event_id = _find(event, "EventID")
        if event_id is not None and event_id.get("IDValue"):
            ids["event_id"] = str(event_id.get("IDValue"))

    move_raw = _text(prefs, "TargetMoveInDate") or _text(customer, "Lease", "ExpectedMoveInDate")
    move_in, move_text = parse_move_in(move_raw, raw.received_at)
    rent_min, rent_max = _range(_find(prefs, "DesiredRent"))
    beds_min, _ = _range(_find(prefs, "DesiredNumBedrooms"))
    baths, _ = _range(_find(prefs, "DesiredNumBathrooms"))
    comments = [_text(e, "Comments") for e in events] + [_text(prefs, "Comment")]
    message = max((c for c in comments if c), key=len, default=None)  # Yardi truncates Comment
    event_type = (event.get("EventType") or "").casefold() if event is not None else ""

    signal = LeadSignal(
        event=EVENT_TYPES.get(event_type, SignalEvent.inquiry),
        channel=Channel.ils,
        occurred_at=when,
        contact=build_contact(
            first_name=_text(customer, "Name", "FirstName"),
            last_name=_text(customer, "Name", "LastName"),
            email=_text(customer, "Email"),
            phone=phone,
            region=ctx.default_country,
        ),
        source=_source(_text(event, "TransactionSource")),
        property=PropertyHint(listing_id=listing_id),
        preferences=SignalPreferences(
            move_in_date=move_in,
            move_in_text=move_text,
            bedrooms=parse_bedrooms(beds_min),
            bathrooms=float(baths) if baths and re.fullmatch(r"\d+(\.\d+)?", str(baths)) else None,
            budget_min=parse_money_range(rent_min)[0],
            budget_max=parse_money_range(rent_max)[1],
            unit_type=_text(prefs, "DesiredFloorplan") or _text(prefs, "DesiredUnit", "MarketingName"),
        ),
        message=message,
        external_ids=ids,
    )
    return ParseResult.ok(signal, parser="mits")
