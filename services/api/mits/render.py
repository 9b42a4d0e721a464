"""Leads out as MITS LeadManagement guest cards (the shape services/intake/parsers/mits.py reads; see
/work/shared/intake-formats.md §4), so a PMS that speaks MITS can take a guestcard lead.

Element names follow the public MITS Lead Management usage (Yardi, ResMan, RealPage). What MITS cannot
carry (status, owner, pets) is left out or put in the Comment text; the source is written the way ILS feeds
name themselves so a MITS reader, including our own intake, maps it back.
"""

from __future__ import annotations

import uuid
from typing import Any
from xml.etree import ElementTree as ET

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api.leads.queries import lead_select, row_to_out
from services.api.leads.schemas import LeadOut
from shared.errors import NotFound
from shared.models import Lead, LeadEvent, Property

# our source keys → the TransactionSource an ILS writes (what the intake MITS parser maps back)
TRANSACTION_SOURCES = {
    "apartments_com": "Apartments.com",
    "zillow": "Zillow",
    "trulia": "Trulia",
    "hotpads": "HotPads",
    "rent_com": "Rent.com",
    "apartment_guide": "ApartmentGuide",
    "realtor_com": "Realtor.com",
    "zumper": "Zumper",
    "padmapper": "PadMapper",
    "rentcafe": "RentCafe",
    "forrent": "ForRent",
    "apartmentsearch": "ApartmentSearch",
    "streeteasy": "StreetEasy",
    "facebook_ads": "Facebook",
    "website": "Property Website",
}
EVENT_TYPES = {"tour_requested": "Appointment", "tour_booked": "Appointment", "toured": "Show"}
EVENT_TYPES |= {"application_started": "Application", "application_submitted": "Application"}
MITS_NS = "http://my-company.com/namespace"  # the namespace public MITS samples use; readers match local names


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str | None) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        element.text = text
    return element


def _money(value: int | None) -> str | None:
    return None if value is None else str(value)


def prospect(parent: ET.Element, lead: LeadOut, property_ref: str | None, comment: str | None) -> None:
    node = _sub(parent, "Prospect")
    customer = _sub(_sub(node, "Customers"), "Customer", Type="prospect")
    _sub(customer, "Identification", IDType="ThirdPartyID", IDValue=str(lead.id), OrganizationName="guestcard")
    if property_ref:
        _sub(customer, "Identification", IDType="PropertyID", IDValue=property_ref, OrganizationName="guestcard")
    name = _sub(customer, "Name")
    if lead.first_name:
        _sub(name, "FirstName", lead.first_name)
    if lead.last_name:
        _sub(name, "LastName", lead.last_name)
    if lead.phone:
        _sub(_sub(customer, "Phone", PhoneType="cell"), "PhoneNumber", lead.phone)
    if lead.email:
        _sub(customer, "Email", lead.email)
    prefs = _sub(node, "CustomerPreferences")
    if lead.move_in_date:
        _sub(prefs, "TargetMoveInDate", lead.move_in_date.isoformat())
    if lead.unit_type:
        _sub(prefs, "DesiredFloorplan", lead.unit_type)
    if lead.budget_min is not None or lead.budget_max is not None:
        _sub(prefs, "DesiredRent", Min=_money(lead.budget_min), Max=_money(lead.budget_max))
    if lead.bedrooms is not None:
        _sub(prefs, "DesiredNumBedrooms", Exact=str(lead.bedrooms))
    if lead.bathrooms is not None:
        _sub(prefs, "DesiredNumBathrooms", Exact=f"{lead.bathrooms:g}")
    extra = [f"Pets: {'yes' if lead.pets else 'no'}" if lead.pets is not None else None, lead.pets_text]
    notes = "; ".join(part for part in [comment, *extra] if part)
    if notes:
        _sub(prefs, "Comment", notes[:2000])
    event = _sub(
        _sub(node, "Events"),
        "Event",
        EventType=EVENT_TYPES.get(str(lead.status), "Email"),
        EventDate=lead.created_at.isoformat(),
    )
    _sub(event, "EventID", IDValue=str(lead.id))
    _sub(event, "FirstContact", "true")
    if comment:
        _sub(event, "Comments", comment[:4000])
    if lead.source:
        _sub(event, "TransactionSource", TRANSACTION_SOURCES.get(lead.source, lead.source))


async def render_leads(
    session: AsyncSession, org_id: uuid.UUID, lead_ids: list[uuid.UUID], scope: ColumnElement[bool] | None = None
) -> bytes:
    """One LeadManagement document with a Prospect per lead, in the order asked; a missing id is a 404, and so
    is one outside `scope` (the caller's lead scope, services.api.owners.scope)."""
    query = lead_select(org_id).where(Lead.id.in_(lead_ids))
    if scope is not None:
        query = query.where(scope)
    rows = (await session.execute(query)).mappings().all()
    leads = {row["id"]: row_to_out(row) for row in rows}
    missing = [str(lead_id) for lead_id in lead_ids if lead_id not in leads]
    if missing:
        raise NotFound("Lead not found.", lead_ids=missing)
    properties = await _property_refs(session, org_id, {lead.property_id for lead in leads.values()})
    comments = await _first_messages(session, list(leads))
    root = ET.Element("LeadManagement", {"xmlns": MITS_NS})
    prospects = _sub(root, "Prospects")
    for lead_id in dict.fromkeys(lead_ids):
        lead = leads[lead_id]
        reference = properties.get(lead.property_id) if lead.property_id else None
        prospect(prospects, lead, reference, comments.get(lead_id))
    ET.indent(root)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


async def _property_refs(session: AsyncSession, org_id: uuid.UUID, ids: set[Any]) -> dict[uuid.UUID, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await session.execute(
        select(Property.id, Property.listing_ids).where(Property.org_id == org_id, Property.id.in_(wanted))
    )
    return {pid: (listing_ids[0] if listing_ids else str(pid)) for pid, listing_ids in rows}


async def _first_messages(session: AsyncSession, lead_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The renter's first message per lead (the guest card's comment)."""
    rows = await session.execute(
        select(LeadEvent.lead_id, LeadEvent.data["message"].astext)
        .where(LeadEvent.lead_id.in_(lead_ids), LeadEvent.actor_type == "renter", LeadEvent.data.has_key("message"))
        .order_by(LeadEvent.occurred_at.desc())
    )
    first: dict[uuid.UUID, str] = {}
    for lead_id, message in rows:  # newest first: the last one written per lead is the earliest
        if message:
            first[lead_id] = message
    return first
