"""Which values of a contact may serve as identity (dedup keys), and why others may not.

Shared by the worker (matching) and the API (applying a signal, manual create, import): one rule everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.enums import IdentityKind
from shared.normalize.email import is_placeholder_email, is_relay_email, normalize_email
from shared.normalize.phone import normalize_phone
from shared.schemas.signal import SignalContact

# Listing sites' own sending domains: an address there is the ILS, never a renter (unless it is a relay).
ILS_SYSTEM_DOMAINS = frozenset(
    {
        "zillow.com",
        "zillowrentals.com",
        "hotpads.com",
        "trulia.com",
        "streeteasy.com",
        "email.streeteasy.com",
        "apartments.com",
        "costar.com",
        "rent.com",
        "email.rent.com",
        "apartmentguide.com",
        "message.my.apartmentguide.com",
        "move.com",
        "realtor.com",
        "email.realtor.com",
        "rentcafe.com",
        "forrent.com",
        "apartmentsearch.com",
        "zumper.com",
        "info.zumper.com",
        "padmapper.com",
        "apartmentlist.com",
    }
)
PLACEHOLDER_PHONES = frozenset({"+10000000000", "+11111111111", "+15555555555", "+19999999999", "+11234567890"})


@dataclass
class IdentityKeys:
    usable: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def value(self, kind: str) -> str | None:
        return next((value for key_kind, value in self.usable if key_kind == kind), None)


def identity_keys(contact: SignalContact, blocked: frozenset[tuple[str, str]] = frozenset()) -> IdentityKeys:
    """Canonical email/phone keys, minus placeholders, relays and blocklisted values (each noted)."""
    keys = IdentityKeys()
    email = normalize_email(contact.email) if contact.email else None
    if contact.email and email is None:
        keys.notes.append("email is not a valid address; not used for matching")
    if email:
        domain = email.rsplit("@", 1)[-1]
        if is_placeholder_email(email):
            keys.notes.append("email is a placeholder; not used for matching")
        elif is_relay_email(email):
            keys.notes.append("email is an ILS relay address; kept as a reply channel, not an identity")
        elif domain in ILS_SYSTEM_DOMAINS:
            keys.notes.append("email is a listing site's own address; not used for matching")
        elif (IdentityKind.email, email) in blocked or ("email_domain", domain) in blocked:
            keys.notes.append("email is on the organization's blocklist; not used for matching")
        else:
            keys.usable.append((IdentityKind.email, email))
    _relay_key(keys, contact.reply_to, email)
    phone = normalize_phone(contact.phone)[0] if contact.phone else None
    if phone:
        if phone in PLACEHOLDER_PHONES:
            keys.notes.append("phone is a placeholder; not used for matching")
        elif (IdentityKind.phone, phone) in blocked:
            keys.notes.append("phone is the organization's own or blocklisted; not used for matching")
        else:
            keys.usable.append((IdentityKind.phone, phone))
    return keys


RELAY = "relay"


def _relay_key(keys: IdentityKeys, reply_to: str | None, relayed_email: str | None) -> None:
    """A per-conversation relay identifies one ILS thread: a follow-up on it is the same renter.

    It is matched only on its exact value and never used as the renter's email.
    """
    relay = normalize_email(reply_to) if reply_to else None
    if relay is None and relayed_email and is_relay_email(relayed_email):
        relay = relayed_email
    if relay and is_relay_email(relay) and len(relay.split("@", 1)[0]) >= 8:
        keys.usable.append((RELAY, relay))
        keys.notes.append("the ILS conversation relay address is used to find this thread")
