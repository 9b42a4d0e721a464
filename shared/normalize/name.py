"""Person names: keep what the renter wrote, split it conservatively.

Listing sites deliver `carlos franceschini`, `MARY O'BRIEN`, `Ms. Gray`, relay display names like
`Rosa Noakes [me.com]` and junk such as `96 New message`. Casing is fixed only where the writer gave no
casing at all; a single word after an honorific is a last name.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nameparser import HumanName
from nameparser.config import CONSTANTS
from nameparser.config.regexes import REGEXES

_RELAY_SUFFIX = re.compile(r"\s*\\?\[[^\]]*\\?\]\s*$")
_JUNK = re.compile(
    r"^\d+\s+new\s+messages?$|^new\s+(message|lead|contact)$|^(a\s+)?renter$|^unknown$|^n/?a$|^none$",
    re.IGNORECASE,
)
_PLAIN_WORD = re.compile(r"[A-Z][a-z]+")
_PARSER_WORDS = frozenset(
    word
    for words in (
        CONSTANTS.titles,
        CONSTANTS.first_name_titles,
        CONSTANTS.suffix_acronyms,
        CONSTANTS.suffix_not_acronyms,
        CONSTANTS.prefixes,
        CONSTANTS.non_first_name_prefixes,
        CONSTANTS.conjunctions,
        CONSTANTS.bound_first_names,
    )
    for word in words
)
_ROMAN_NUMERAL = REGEXES["roman_numeral"]  # "Vi", "Iii": nameparser reads them as suffixes (VI, III)
_PARTICLES = frozenset({"de", "la", "del", "van", "von", "der", "da", "di", "le", "du", "dos", "das", "y", "bin"})


def clean_name(raw: object) -> str | None:
    """The display text of a name with relay brackets, quotes and junk removed."""
    if raw is None or not isinstance(raw, str):
        return None
    text = _RELAY_SUFFIX.sub("", raw.replace("\u00a0", " ")).strip().strip("\"'").strip()
    text = re.sub(r"\s+", " ", text)
    if not text or _JUNK.match(text) or "@" in text:
        return None
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 1 or sum(c.isdigit() for c in text) > 0:
        return None
    return text


def _fix_case(text: str) -> str:
    if text.islower() or text.isupper():
        human = HumanName(text)
        human.capitalize(force=True)
        return str(human) or text
    words = []
    for word in text.split(" "):
        if word.islower() and word not in _PARTICLES and len(word) > 1:
            word = word[0].upper() + word[1:]
        words.append(word)
    return " ".join(words)


def split_name(raw: object) -> tuple[str | None, str | None, str | None]:
    """(full_name, first_name, last_name); all None for junk."""
    text = clean_name(raw)
    if text is None:
        return None, None, None
    return _split(text)


@lru_cache(maxsize=4096)
def _split(text: str) -> tuple[str, str | None, str | None]:
    """Cached: a renter's name comes again with every touch, and nameparser takes ~90 µs a name."""
    full = _fix_case(text)
    plain = _plain_first_last(full)
    if plain is not None:
        return full, *plain
    human = HumanName(full)
    first = human.first or None
    last = human.last or None
    if human.title and first and not last:  # "Ms. Gray": the one word is the surname
        first, last = None, first
    if first and not last and _lone_numeral(human.suffix):  # "Dana Vi": a suffix follows a surname, so it is one
        last = human.suffix
        if (text.islower() or text.isupper()) and full.endswith(last):  # _fix_case wrote a numeral ("Dana VI")
            last = last.capitalize()
            full = full[: len(full) - len(last)] + last
    elif first and last and _lone_numeral(human.suffix) and _typed_as_name(text, human.suffix):
        last = human.suffix  # "Mary Ann Vi": the renter wrote a name, not a generation ("Mary Ann VI")
    if first and not last and not human.title and len(full.split()) == 1:
        return full, first, None
    return full, first, last


def _lone_numeral(suffix: str) -> bool:
    """One word nameparser read as a roman-numeral suffix ("Vi", "Iv"): with no surname before it, it is the
    surname (Vietnamese "Vi"), not a generation."""
    return bool(suffix) and " " not in suffix and bool(_ROMAN_NUMERAL.match(suffix.upper()))


def _typed_as_name(text: str, suffix: str) -> bool:
    """The numeral word as the renter typed it is capitalized like a name ("Vi"), where a generation is written
    in capitals ("III", "VI") or after a comma ("Smith, Iv"). A lowercase or all-capitals word says nothing, so
    nameparser's reading stands."""
    words = text.split()
    return len(words) > 1 and words[-1] == suffix.capitalize() and not words[-2].endswith(",")


def _plain_first_last(full: str) -> tuple[str, str] | None:
    """`Dana Reyes`: two capitalized ASCII words, neither a title, suffix, prefix or conjunction nameparser
    knows, split as nameparser would without building a parser (tests/intake/test_normalize.py holds them equal)."""
    words = full.split(" ")
    if len(words) != 2 or not all(_PLAIN_WORD.fullmatch(word) for word in words):
        return None
    if any(word.lower() in _PARSER_WORDS or _ROMAN_NUMERAL.match(word) for word in words):
        return None
    return words[0], words[1]
