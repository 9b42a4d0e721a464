"""Phone numbers to E.164, the dedup key for people who call, text or type a number into a form.

Senders hand us whatever the renter typed (`703.868.3162`, `(650) 555-5555 x12`), link targets
(`tel://6505555555`, URL-encoded), JSON numbers (`15550000000`) and carrier placeholders for withheld
caller ids. Only numbers `phonenumbers` calls valid come out; everything else is None, because a wrong
phone merges two strangers.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

import phonenumbers

# Carrier stand-ins for a withheld caller id (ANONYMOUS / RESTRICTED / UNAVAILABLE spelled on a keypad,
# as Twilio and other carriers deliver them).
ANONYMOUS_NUMBERS = frozenset({"+266696687", "+7378742833", "+86282452253", "+2562533", "+8656696687"})
ANONYMOUS_WORDS = frozenset(
    {
        "anonymous",
        "restricted",
        "unavailable",
        "unknown",
        "private",
        "blocked",
        "withheld",
        "no caller id",
        "not available",
        "none",
        "n/a",
    }
)
_SCHEMES = re.compile(r"^\s*(?:tel|callto|sms|sip)\s*:\s*(?://)?", re.IGNORECASE)


def _clean(raw: object) -> str | None:
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, float):
        if raw != raw or raw <= 0:  # NaN or nonsense
            return None
        raw = int(raw)
    text = unquote(str(raw)) if "%" in str(raw) else str(raw)
    text = _SCHEMES.sub("", text).strip().strip("\"'<>")
    return text or None


def is_anonymous(raw: object) -> bool:
    """True for the values carriers use when the caller withheld their number."""
    text = _clean(raw)
    if text is None:
        return True
    if text.casefold() in ANONYMOUS_WORDS:
        return True
    digits = re.sub(r"\D", "", text)
    if not digits or len(set(digits)) == 1:  # 0000000000, 1111111111 placeholders
        return True
    return f"+{digits}" in ANONYMOUS_NUMBERS


def normalize_phone(raw: object, default_region: str = "US") -> tuple[str | None, str | None]:
    """Return (E.164, extension) or (None, None) when the value is not a real, valid number."""
    if isinstance(raw, str):
        return _normalize_phone_text(raw, default_region)
    return _normalize_phone(raw, default_region)


@lru_cache(maxsize=16_384)
def _normalize_phone_text(raw: str, default_region: str) -> tuple[str | None, str | None]:
    """Memoized for text (a pure function of it): a record's phone is normalized for the body, then again
    for its identity key."""
    return _normalize_phone(raw, default_region)


def _normalize_phone(raw: object, default_region: str) -> tuple[str | None, str | None]:
    text = _clean(raw)
    if text is None or is_anonymous(text):
        return None, None
    candidates = [text]
    digits = re.sub(r"\D", "", text)
    if not text.startswith("+") and len(digits) > 10 and not re.search(r"[a-zA-Z#]", text):
        candidates.append("+" + digits)  # international number typed without the plus
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if e164 in ANONYMOUS_NUMBERS:
                return None, None
            return e164, (number.extension or None)
    return None, None


_PHONE_IN_TEXT = re.compile(r"(?<![\w/])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\d)|\+\d{10,14}")


def find_phone(text: str | None, default_region: str = "US") -> tuple[str | None, str | None]:
    """The first valid phone number written somewhere in free text."""
    if not text:
        return None, None
    for match in _PHONE_IN_TEXT.finditer(text):
        e164, ext = normalize_phone(match.group(0), default_region)
        if e164:
            return e164, ext
    return None, None
