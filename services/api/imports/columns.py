"""CSV column names as people export them from other CRMs and spreadsheets, mapped onto lead fields."""

from __future__ import annotations

import re

ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "first", "firstname", "given_name"),
    "last_name": ("last_name", "last", "lastname", "surname", "family_name"),
    "full_name": ("name", "full_name", "fullname", "contact_name", "prospect_name"),
    "email": ("email", "e_mail", "email_address", "primary_email"),
    "phone": ("phone", "phone_number", "mobile", "cell", "cell_phone", "primary_phone", "telephone"),
    "property": ("property", "property_name", "community", "listing"),
    "property_id": ("property_id",),
    "source": ("source", "lead_source", "marketing_source"),
    "sub_source": ("sub_source", "campaign"),
    "status": ("status", "lead_status", "stage"),
    "move_in_date": ("move_in_date", "move_in", "move_date", "desired_move_in", "target_move_in_date"),
    "bedrooms": ("bedrooms", "beds", "bed", "desired_bedrooms"),
    "budget_min": ("budget_min", "min_budget", "min_rent"),
    "budget_max": ("budget_max", "max_budget", "max_rent", "budget"),
    "pets": ("pets", "has_pets"),
    "unit_type": ("unit_type", "floor_plan", "floorplan"),
    "kind": ("kind", "contact_type", "type"),
    "notes": ("notes", "note", "comments", "comment", "message"),
    "owner_email": ("owner_email", "agent_email", "assigned_to_email", "owner"),
}
_BY_ALIAS = {alias: field for field, aliases in ALIASES.items() for alias in aliases}


def header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def canonical(header: str) -> str | None:
    """'Move-in Date' → move_in_date; unknown headers → None (ignored, and reported)."""
    return _BY_ALIAS.get(header_key(header))
