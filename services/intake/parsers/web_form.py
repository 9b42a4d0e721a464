"""The operator's own website forms (JSON or urlencoded), and the field mapping other form senders reuse.

Forms have no standard, so labels are folded to snake case and looked up through aliases. Sites that
nest their fields (`{"fields": {...}}`, `{"data": {...}}`, `[{"name": …, "value": …}]`) are flattened one
level; a `property` object gives the property hint its id and name, a `utm` object its utm_* fields. A form
without a type says what it wants in its message ("Can I tour Saturday?"): the ILS emails' intent rule
applies. A filled honeypot field means a bot: the delivery is ignored, not failed, so nobody is paged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from services.intake.parsers.base import ParseContext, ParseResult, RawInbound
from services.intake.parsers.common import (
    as_text,
    build_contact,
    decode_form,
    first,
    intent_from_message,
    parse_bedrooms,
    parse_bool,
    parse_timestamp,
    utm_fields,
)
from shared.enums import Channel, SignalEvent
from shared.normalize import parse_money_range, parse_move_in
from shared.schemas.signal import LeadSignal, PropertyHint, SignalPreferences, SignalSource

HONEYPOT_FIELDS = ("website", "_hp", "hp", "company_url", "honeypot", "_gotcha", "url_hp", "fax_hp")
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "full_name", "fullname", "your_name", "contact_name"),
    "first_name": ("first_name", "firstname", "first", "fname", "given_name"),
    "last_name": ("last_name", "lastname", "last", "lname", "surname", "family_name"),
    "email": ("email", "email_address", "e_mail", "your_email", "emailaddress"),
    "phone": ("phone", "phone_number", "telephone", "mobile", "cell", "tel", "mobile_phone", "cell_phone"),
    "message": ("message", "comments", "comment", "questions", "question", "notes", "your_message"),
    "move_in": ("move_in", "move_in_date", "movein", "moving_date", "desired_move_in", "move_date"),
    "bedrooms": ("bedrooms", "beds", "bedroom", "num_bedrooms", "unit_size"),
    "budget": ("budget", "max_rent", "price_range", "rent_budget", "monthly_budget", "desired_rent"),
    "budget_min": ("budget_min", "min_budget", "min_rent"),
    "budget_max": ("budget_max", "max_budget"),
    "pets": ("pets", "has_pets", "pet"),
    "property_id": ("property_id", "property"),
    "listing_id": ("listing_id", "listing", "unit_id"),
    "unit_type": ("unit_type", "floorplan", "floor_plan", "unit"),
    "tour_times": ("tour_times", "tour_time", "preferred_tour_time", "preferred_tour_times", "tour_date"),
    "form_type": ("form_type", "type", "form"),
    "submission_id": ("submission_id", "idempotency_key", "submissionid"),
    "submitted_at": ("submitted_at", "submittedat", "timestamp"),
    "address": ("listing_address", "property_address"),
    "property_name": ("property_name", "community", "community_name", "building_name"),
    "agent": ("agent", "agent_email", "preferred_agent", "agent_name"),
}
# sub-objects that name the property the form is about: their id / name / address become the hint
PROPERTY_OBJECTS = frozenset({"property", "community", "listing", "building"})
# keys of one field in a list of fields: [{"name": "email", "value": "…"}]
FIELD_NAME_KEYS = ("name", "key", "field", "label", "id")
FORM_EVENTS = {
    "tour": SignalEvent.tour_request,
    "tour_request": SignalEvent.tour_request,
    "schedule_tour": SignalEvent.tour_request,
    "question": SignalEvent.question,
    "contact": SignalEvent.inquiry,
    "inquiry": SignalEvent.inquiry,
    "application": SignalEvent.application,
    "apply": SignalEvent.application,
}


def fold_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.casefold()).strip("_")


def canonical_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Map arbitrary form labels onto the canonical names above (first alias wins)."""
    folded = {fold_key(str(k)): v for k, v in fields.items()}
    result: dict[str, Any] = {}
    for canonical, aliases in ALIASES.items():
        value = first(folded, *aliases)
        if value is not None:
            result[canonical] = value
    for key, value in folded.items():
        if key.startswith("utm_"):
            result[key] = value
    return result


def _property_fields(value: Mapping[str, Any]) -> dict[str, Any]:
    inner = {fold_key(str(k)): v for k, v in value.items()}
    found = {
        "property_id": first(inner, "id", "property_id", "uuid", "listing_id"),
        "property_name": first(inner, "name", "property_name", "title"),
        "property_address": first(inner, "address", "property_address", "street"),
    }
    return {key: item for key, item in found.items() if item is not None and not isinstance(item, dict | list)}


def _field_list(value: list[Any]) -> dict[str, Any] | None:
    """[{"name": "email", "value": "…"}, …] as a dict; None when the list is something else."""
    if not value or not all(isinstance(item, dict) and "value" in item for item in value):
        return None
    pairs: dict[str, Any] = {}
    for item in value:
        name = next((item[key] for key in FIELD_NAME_KEYS if isinstance(item.get(key), str) and item[key]), None)
        if name is not None:
            pairs.setdefault(name, item["value"])
    return pairs


def flatten_form(fields: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting lifted to the top; top-level fields win over nested ones."""
    flat: dict[str, Any] = {}
    nested: list[Mapping[str, Any]] = []
    for key, value in fields.items():
        folded = fold_key(str(key))
        if isinstance(value, dict) and folded in PROPERTY_OBJECTS:
            nested.append(_property_fields(value))
        elif isinstance(value, dict) and folded == "utm":
            nested.append({k if fold_key(str(k)).startswith("utm_") else f"utm_{k}": v for k, v in value.items()})
        elif isinstance(value, dict):
            nested.append(value)
        elif isinstance(value, list) and (pairs := _field_list(value)) is not None:
            nested.append(pairs)
        else:
            flat[key] = value
    for inner in nested:
        for key, value in inner.items():
            if not isinstance(value, dict):
                flat.setdefault(key, value)
    return flat


def honeypot_filled(fields: Mapping[str, Any]) -> bool:
    folded = {fold_key(str(k)): v for k, v in fields.items()}
    return any(as_text(folded.get(fold_key(name))) for name in HONEYPOT_FIELDS)


def _tour_times(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else re.split(r"\s*[;|]\s*", str(value))
    return [str(item).strip() for item in items if str(item).strip()]


def signal_from_fields(
    fields: Mapping[str, Any],
    *,
    raw: RawInbound,
    ctx: ParseContext,
    source: SignalSource,
    channel: Channel = Channel.web,
    occurred_at: datetime | None = None,
    external_ids: dict[str, str] | None = None,
) -> LeadSignal:
    """One LeadSignal from a canonical-ish field dict (labels are folded, one level of nesting lifted)."""
    canon = canonical_fields(flatten_form(fields))
    when = occurred_at or parse_timestamp(canon.get("submitted_at"), raw.received_at)
    move_in, move_text = parse_move_in(as_text(canon.get("move_in")), when)
    low, high = parse_money_range(canon.get("budget"))
    if canon.get("budget_min") is not None or canon.get("budget_max") is not None:
        low = parse_money_range(canon.get("budget_min"))[0] or low
        high = parse_money_range(canon.get("budget_max"))[1] or high
    tours = _tour_times(canon.get("tour_times"))
    form_type = fold_key(as_text(canon.get("form_type")) or "")
    message = as_text(canon.get("message"))
    event = FORM_EVENTS.get(form_type) or (SignalEvent.tour_request if tours else intent_from_message(message))
    pets_text = as_text(canon.get("pets"))
    ids = dict(external_ids or {})
    if canon.get("submission_id") is not None:
        ids.setdefault("submission_id", str(canon["submission_id"]))
    hint = PropertyHint(address=as_text(canon.get("address")), name=as_text(canon.get("property_name")))
    prop = as_text(canon.get("property_id"))
    if prop:
        try:
            hint.property_id = UUID(prop)
        except ValueError:
            # a site's own `property` value may be our listing id or the property's name: try both
            hint.listing_id = prop
            hint.name = hint.name or prop
    listing = as_text(canon.get("listing_id"))
    if listing:
        hint.listing_id = listing
    return LeadSignal(
        event=event,
        channel=channel,
        occurred_at=when,
        contact=build_contact(
            name=as_text(canon.get("name")),
            first_name=as_text(canon.get("first_name")),
            last_name=as_text(canon.get("last_name")),
            email=as_text(canon.get("email")),
            phone=canon.get("phone"),
            region=ctx.default_country,
        ),
        source=source,
        property=hint,
        preferences=SignalPreferences(
            move_in_date=move_in,
            move_in_text=move_text,
            bedrooms=parse_bedrooms(canon.get("bedrooms")),
            budget_min=low,
            budget_max=high,
            pets=parse_bool(pets_text),
            pets_text=pets_text,
            unit_type=as_text(canon.get("unit_type")),
            preferred_tour_times=tours,
        ),
        message=message,
        external_ids=ids,
        agent_hint=(as_text(canon.get("agent")) or "")[:320] or None,
    )


def parse(raw: RawInbound, ctx: ParseContext) -> ParseResult:
    fields = flatten_form(decode_form(raw))
    if honeypot_filled(fields):
        return ParseResult.ignored("honeypot", parser="web_form")
    utm = {k.lower(): v for k, v in utm_fields(fields).items()}
    source = SignalSource(
        source="website",
        sub_source=utm.get("utm_source"),
        medium=utm.get("utm_medium"),
        campaign=utm.get("utm_campaign"),
        utm=utm,
    )
    signal = signal_from_fields(fields, raw=raw, ctx=ctx, source=source)
    if not (signal.contact.email or signal.contact.phone or signal.contact.full_name):
        return ParseResult.failed("form has no contact fields", parser="web_form")
    return ParseResult.ok(signal, parser="web_form")
