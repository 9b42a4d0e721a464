"""A signal fitted to the columns it lands in (shared.limits): the API never refuses a signal for a length.

Each part of the signal is fitted against the table that stores it: the renter's names against `contacts`,
the source and the preferences against `leads` (a source key also lands in `lead_events.source` and
`contact_identities.source`, all 64 wide). Identity values (email, phone) are not cut: they are validated
and normalized before they get here, and a cut one would identify someone else.
"""

from __future__ import annotations

from shared.limits import columns_of, fit_model, fit_value
from shared.models import Contact, Lead
from shared.schemas.signal import LeadSignal


def fit_signal(signal: LeadSignal) -> tuple[LeadSignal, list[str]]:
    """(the signal as storable, the dotted names of the fields that were cut or dropped)."""
    contact, cut = fit_model(signal.contact, Contact, "contact.")
    source, source_cut = fit_model(signal.source, Lead, "source.")
    preferences, preferences_cut = fit_model(signal.preferences, Lead, "preferences.")
    if contact.full_name is None and contact.first_name and contact.last_name:
        # the contact's full name is composed from the parts when absent; it must fit too
        composed, changed = fit_value(columns_of(Contact)["full_name"], f"{contact.first_name} {contact.last_name}")
        if changed:
            contact = contact.model_copy(update={"full_name": composed})
            cut.append("contact.full_name")
    cut += source_cut + preferences_cut
    if not cut:
        return signal, []
    return signal.model_copy(update={"contact": contact, "source": source, "preferences": preferences}), cut
