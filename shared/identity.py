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


def email_identity(raw: object, blocked: frozenset[tuple[str, str]] = frozenset()) -> tuple[str | None, str | None]:
    """THE rule for email: (address, None) when it may identify a person, else (None, why not).

    Blank input gives (None, None). Parsers (without the blocklist, or with the organization's) and the API
    (with it) both call this, so "may identify a person" has one definition.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, None
    email = normalize_email(raw)
    if email is None:
        return None, "email is not a valid address; not used for matching"
    domain = email.rsplit("@", 1)[-1]
    if is_placeholder_email(email):
        return None, "email is a placeholder; not used for matching"
    if is_relay_email(email):
        return None, "email is an ILS relay address; kept as a reply channel, not an identity"
    if domain in ILS_SYSTEM_DOMAINS:
        return None, "email is a listing site's own address; not used for matching"
    if (IdentityKind.email, email) in blocked or ("email_domain", domain) in blocked:
        return None, "email is on the organization's blocklist; not used for matching"
    return email, None


def identity_email(raw: object, blocked: frozenset[tuple[str, str]] = frozenset()) -> str | None:
    """A normalized address that may identify a person (see `email_identity`), else None."""
    return email_identity(raw, blocked)[0]


def phone_identity(
    raw: object, blocked: frozenset[tuple[str, str]] = frozenset(), region: str = "US"
) -> tuple[str | None, str | None]:
    """THE rule for phones: (E.164, None) when it may identify a person, else (None, why not)."""
    phone = normalize_phone(raw, region)[0] if raw not in (None, "") else None
    if phone is None:
        return None, None
    if phone in PLACEHOLDER_PHONES:
        return None, "phone is a placeholder; not used for matching"
    if (IdentityKind.phone, phone) in blocked:
        return None, "phone is the organization's own or blocklisted; not used for matching"
    return phone, None


def identity_keys(contact: SignalContact, blocked: frozenset[tuple[str, str]] = frozenset()) -> IdentityKeys:
    """Canonical email/phone keys, minus placeholders, relays, listing sites and blocklisted values (noted)."""
    keys = IdentityKeys()
    email, note = email_identity(contact.email, blocked)
    if email:
        keys.usable.append((IdentityKind.email, email))
    elif note:
        keys.notes.append(note)
    _relay_key(keys, contact.reply_to, normalize_email(contact.email) if contact.email else None)
    phone, note = phone_identity(contact.phone, blocked)
    if phone:
        keys.usable.append((IdentityKind.phone, phone))
    elif note:
        keys.notes.append(note)
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
