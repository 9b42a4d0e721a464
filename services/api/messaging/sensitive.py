"""Sensitive conversations: a curated phrase list per category, matched on word boundaries.

Not a model: each phrase is here, documented in docs/messaging.md and tested, so anyone can see why a
message went to a person. A hit means: only a neutral acknowledgement, a `sensitive_conversation` review
item (category, phrase, SLA) and automation paused for the lead until a person resolves it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PHRASES: dict[str, tuple[str, ...]] = {
    "fair_housing_voucher": (
        "section 8",
        "section eight",
        "sec 8",
        "housing choice voucher",
        "housing voucher",
        "voucher",
        "hcv",
        "housing authority",
        "rental assistance",
        "subsidized",
        "vash",
    ),
    "fair_housing_familial_status": (
        "pregnant",
        "my kids",
        "my children",
        "children allowed",
        "kids allowed",
        "families with children",
        "family with kids",
        "adults only",
        "no kids",
        "newborn",
    ),
    "fair_housing_disability": (
        "disability",
        "disabled",
        "handicap",
        "wheelchair",
        "reasonable accommodation",
        "reasonable modification",
        "ssdi",
        "mental illness",
        "ada accessible",
        "ada compliant",
    ),
    "fair_housing_assistance_animal": (
        "service animal",
        "service dog",
        "emotional support animal",
        "emotional support dog",
        "emotional support cat",
        "esa letter",
        "assistance animal",
        "support animal",
    ),
    "fair_housing_accessibility": (
        "accessible unit",
        "accessibility",
        "ground floor unit for",
        "grab bars",
        "ramp",
        "elevator access",
        "roll-in shower",
    ),
    "fair_housing_national_origin": (
        "national origin",
        "immigrant",
        "immigration status",
        "green card",
        "undocumented",
        "citizenship",
        "no ssn",
        "itin",
        "where i'm from",
    ),
    "fair_housing_religion": (
        "religion",
        "religious",
        "my church",
        "my temple",
        "place of worship",
        "mosque",
        "synagogue",
        "muslim",
        "jewish",
        "christian",
        "hindu",
        "sikh",
    ),
    "angry_or_legal": (
        "lawyer",
        "attorney",
        "lawsuit",
        "sue you",
        "suing",
        "legal action",
        "discrimination",
        "discriminate",
        "discriminating",
        "hud complaint",
        "fair housing complaint",
        "report you",
        "better business bureau",
        "scam",
        "scammer",
        "this is ridiculous",
        "unacceptable",
        "stop harassing",
    ),
    "payment_dispute": (
        "refund",
        "chargeback",
        "charge back",
        "dispute the charge",
        "application fee back",
        "deposit back",
        "overcharged",
        "double charged",
        "charged twice",
        "unauthorized charge",
    ),
}

_PATTERNS = {
    category: [(phrase, re.compile(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])")) for phrase in phrases]
    for category, phrases in PHRASES.items()
}
# every phrase in one pattern: most texts have none, and one search says so (was one search per phrase, ~100)
_ANY = re.compile(
    r"(?<![a-z0-9])(?:"
    + "|".join(re.escape(phrase) for phrases in PHRASES.values() for phrase in sorted(phrases, key=len, reverse=True))
    + r")(?![a-z0-9])"
)


@dataclass(frozen=True, slots=True)
class SensitiveHit:
    category: str
    phrase: str


def detect(text: str | None) -> SensitiveHit | None:
    """The first category (in PHRASES order) with a phrase in the text, case-insensitive, whole words."""
    if not text:
        return None
    folded = " ".join(text.casefold().replace("’", "'").split())
    if _ANY.search(folded) is None:
        return None
    for category, patterns in _PATTERNS.items():
        for phrase, pattern in patterns:
            if pattern.search(folded):
                return SensitiveHit(category, phrase)
    return None
