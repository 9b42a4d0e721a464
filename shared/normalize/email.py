"""Email addresses: one canonical spelling per person, and the addresses that are not a person.

ILS mail hides the renter's address in `mailto:` buttons with query strings, in display-name brackets and
behind per-conversation relays. A relay is a reply channel, never an identity (intake-formats.md §2), and
placeholders like `none@none.com` would merge every renter who skipped the field into one contact.
Which address may identify a person is decided in one place: `shared.identity.email_identity`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote

from email_validator import EmailNotValidError, validate_email

# Per-conversation relays of listing sites: replying works, but the address identifies the thread only.
RELAY_DOMAINS = frozenset(
    {
        "convo.zillow.com",
        "convo.trulia.com",
        "convo.hotpads.com",
        "zlead.co",
        "reply.craigslist.org",
        "messaging.apartments.com",
        "relay.apartments.com",
        "reply.apartmentlist.com",
        "marketplace.facebookmail.com",
    }
)
# Domains that are relays only for generated local parts (the same domain also sends notifications).
RELAY_LOCAL_PREFIXES = {
    "email.rent.com": ("reply-",),
    "message.my.apartmentguide.com": ("reply-",),
    "email.apartmentguide.com": ("reply-",),
}
PLACEHOLDER_DOMAINS = frozenset(
    {"none.com", "noemail.com", "nomail.com", "test.com", "na.com", "no.com", "noemail.net", "email.none"}
)
PLACEHOLDER_LOCALS = frozenset(
    {
        "none",
        "noemail",
        "no-email",
        "no_email",
        "nomail",
        "na",
        "n.a",
        "null",
        "unknown",
        "declined",
        "refused",
    }
)
_ADDR_IN_ANGLES = re.compile(r"<([^<>]+)>")


def _strip_mailto(text: str) -> str:
    """The `mailto:` scheme removed and percent-escapes decoded (the query is cut by the caller)."""
    if text.lower().startswith("mailto:"):
        return unquote(text[7:])
    return text


def normalize_email(raw: object) -> str | None:
    """Lowercased, syntax-checked address (plus tags kept), or None."""
    if raw is None or isinstance(raw, bool | int | float):
        return None
    return _normalize_email_text(str(raw))


@lru_cache(maxsize=16_384)
def _normalize_email_text(raw: str) -> str | None:
    """Memoized: a pure function of the text, and the same address is normalized several times per record
    (the lead body, then its identity key; an import row, then its match)."""
    text = _strip_mailto(unicodedata.normalize("NFKC", raw).strip())
    match = _ADDR_IN_ANGLES.search(text)
    if match:
        # `addr<mailto:addr>` (plain-text renderings of links): the scheme comes off after the brackets
        text = _strip_mailto(match.group(1).strip())
    text = text.split("?", 1)[0].strip().strip("<>\"'()[],;:. \t\r\n")
    if "@" not in text or " " in text:
        return None
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    return valid.normalized.lower()


def _split(addr: str) -> tuple[str, str]:
    local, _, domain = addr.rpartition("@")
    return local.lower(), domain.lower()


def is_relay_email(addr: str | None) -> bool:
    """True when the address is an ILS relay that forwards to the renter (a reply channel)."""
    if not addr or "@" not in addr:
        return False
    local, domain = _split(addr)
    if domain in RELAY_DOMAINS or any(domain.endswith("." + d) for d in RELAY_DOMAINS):
        return True
    prefixes = RELAY_LOCAL_PREFIXES.get(domain)
    return bool(prefixes and local.startswith(prefixes))


def is_placeholder_email(addr: str | None) -> bool:
    """True for what people type to skip a required email field."""
    if not addr or "@" not in addr:
        return False
    local, domain = _split(addr)
    if domain in PLACEHOLDER_DOMAINS or local in PLACEHOLDER_LOCALS:
        return True
    return local == domain.split(".", 1)[0] and local in {"test", "email", "a", "x", "abc", "asdf"}
