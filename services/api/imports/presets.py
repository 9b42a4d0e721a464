"""Column layouts of the files people bring, mapped onto import fields.

- `generic`: a generic CRM or spreadsheet export; header names matched by the aliases in columns.py
  (Name, First Name, E-mail, Mobile, Move-in Date, Budget, Lead Source, Notes …).
- `guestcard`: our own `GET /v1/leads/export.csv` (docs/integrations.md), so an export moves between
  organizations or installations.
- `knock`: Knock (a leasing CRM) prospect fields as its public prospect-creation API names them
  (support.knockrentals.com, "Knock prospect creation API": firstName, lastName, email, phone, moveDate,
  bedrooms, occupants, leaseTermMonths, minBudget, maxBudget, sourceTitle, message), the layout its
  integrations exchange.
An explicit `mapping` ({"CSV header": "field"}) wins over the preset; unknown headers are ignored and listed.
"""

from __future__ import annotations

from services.api.imports.columns import canonical, header_key

FIELDS = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "property",
    "property_id",
    "source",
    "sub_source",
    "status",
    "lost_reason",
    "move_in_date",
    "bedrooms",
    "bathrooms",
    "budget_min",
    "budget_max",
    "pets",
    "unit_type",
    "lease_length_months",
    "occupants",
    "kind",
    "notes",
    "owner_email",
    "external_id",
)

GUESTCARD = {
    "id": "external_id",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "kind": "kind",
    "property_id": "property_id",
    "status": "status",
    "source": "source",
    "sub_source": "sub_source",
    "owner_email": "owner_email",
    "move_in_date": "move_in_date",
    "bedrooms": "bedrooms",
    "bathrooms": "bathrooms",
    "budget_min": "budget_min",
    "budget_max": "budget_max",
    "pets": "pets",
    "unit_type": "unit_type",
    "lost_reason": "lost_reason",
}
KNOCK = {
    "firstname": "first_name",
    "lastname": "last_name",
    "email": "email",
    "phone": "phone",
    "movedate": "move_in_date",
    "bedrooms": "bedrooms",
    "occupants": "occupants",
    "leasetermmonths": "lease_length_months",
    "minbudget": "budget_min",
    "maxbudget": "budget_max",
    "sourcetitle": "source",
    "message": "notes",
    "communityid": "property",
}
PRESETS: dict[str, dict[str, str]] = {"generic": {}, "guestcard": GUESTCARD, "knock": KNOCK}


def field_for(header: str, preset: str, mapping: dict[str, str]) -> str | None:
    if header in mapping:
        return mapping[header] or None
    table = PRESETS[preset]
    key = header_key(header)
    if key in table:
        return table[key]
    if key.replace("_", "") in table:
        return table[key.replace("_", "")]
    if preset == "guestcard" and key in GUESTCARD.values():
        return key
    return canonical(header)
