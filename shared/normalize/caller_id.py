"""Caller-ID names (CNAM): what a carrier shows for a caller is often not a person's name.

Carriers send stand-ins ("WIRELESS CALLER", "UNKNOWN NAME", "PRIVATE"), the city and state the number was
registered in ("AUSTIN TX"), or a carrier's own name or code. Those stay on the call event as the raw caller
name and never become the contact's first and last name. The check is deliberately one-sided: a string made
only of stand-in words, carrier names and a trailing state code is not a name; anything else is left to the
name rules (`split_name`).
"""

from __future__ import annotations

import re

from shared.normalize.name import split_name

# The reason an inbound call from a withheld / anonymous number is kept as `ignored` (metrics count these
# per property from inbound_messages.property_id).
ANONYMOUS_CALLER_REASON = "anonymous caller"
ANONYMOUS_ANSWERED_REASON = "anonymous caller, answered"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STAND_IN_WORDS = _words(
    """
    wireless caller callers cell cellular mobile phone telephone unknown name names number private anonymous
    unavailable unavail restricted blocked id no not available out of area toll free call voip info withheld
    unlisted spam risk likely scam potential suspected fraud telemarketer telemarketing pay payphone n a none
    nomatch cnam is the subscriber customer line landline business residential residence unknwn unk anon priv
    """
)
# Carrier names that are no one's name ...
_CARRIER_WORDS = _words(
    """
    verizon vzw tmobile at&t att sprint pcs cingular metropcs uscellular tracfone textnow bandwidth twilio
    level3 onvoy inteliquent ooma vonage magicjack comcast xfinity centurylink windstream vodafone telus voice
    wireline communications telecom inc llc corp usa mobility networks
    """
)
# ... and words that are a carrier only beside one of the above or a stand-in word ("BOOST MOBILE", "BELL
# CANADA"), since alone they are also surnames ("Bell Rogers")
_WEAK_CARRIER_WORDS = _words(
    """
    t us boost virgin cricket metro straight talk google level peerless spectrum charter frontier lumen rogers
    bell fido shaw canada co comm comms tel network services
    """
)
_STRONG = _STAND_IN_WORDS | _CARRIER_WORDS
# USPS codes of the states, DC and territories: CNAM's "CITY ST" form ends with one
_STATE_CODES = _words(
    """
    al ak az ar ca co ct de dc fl ga hi id il in ia ks ky la me md ma mi mn ms mo mt ne nv nh nj nm ny nc nd oh
    ok or pa ri sc sd tn tx ut vt va wa wv wi wy pr vi gu as mp
    """
)
_TOKENS = re.compile(r"[a-z0-9&]+")


def _tokens(text: str) -> list[str]:
    return _TOKENS.findall(text.casefold().replace("t-mobile", "tmobile").replace("at & t", "at&t"))


def is_caller_id_placeholder(raw: object) -> bool:
    """True when a caller-ID name is a carrier stand-in, a "CITY ST" location or a carrier name/code."""
    if raw is None or not isinstance(raw, str):
        return True
    text = raw.strip()
    words = _tokens(text)
    if not words or any(c.isdigit() for c in text):
        return True  # empty, punctuation only, or a carrier / switch code with digits
    if all(word in _STRONG or word in _WEAK_CARRIER_WORDS for word in words) and any(w in _STRONG for w in words):
        return True
    # "AUSTIN TX", "SAN ANTONIO, TX", "CELL PHONE TX": a place (CNAM is upper case, or written "City, ST")
    last = words[-1]
    if len(words) >= 2 and last in _STATE_CODES:
        return text.upper() == text or bool(re.search(r",\s*[A-Za-z]{2}\s*$", text))
    return False


def caller_contact_name(raw: object) -> str | None:
    """The caller-ID name when it may be used as the contact's name, else None (the raw value stays on
    the event)."""
    if is_caller_id_placeholder(raw):
        return None
    full, _, _ = split_name(raw)
    return full
