"""Move-in dates as people and listing sites write them.

Forms say `Oct 01, 2025`, `08/29/2017`, `20260901`, `Sep 15` (no year) or `flexible`. A missing year means
the next such day on or after the message date; vague phrases are kept as text so nobody invents a date;
dates far in the past are feed garbage (MITS exports with `1925`), not a move-in.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from dateutil import parser as dateutil_parser

NOT_ANSWERED = frozenset(
    {"", "not answered", "n/a", "na", "none", "null", "-", "--", "unknown", "not specified", "0", "tbd?"}
)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_PATTERNS = [
    (re.compile(r"\b(\d{4})(\d{2})(\d{2})\b"), "ymd8"),
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?\b"), "iso"),
    (re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})\b"), "mdy"),
    (re.compile(rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b", re.IGNORECASE), "text_year"),
    (
        re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}\b", re.IGNORECASE),
        "text_year",
    ),
    (re.compile(rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b", re.IGNORECASE), "text_no_year"),
    (re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}", re.IGNORECASE), "text_no_year"),
    (re.compile(rf"\b{_MONTH},?\s+(\d{{4}})\b", re.IGNORECASE), "month_year"),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})\b(?!/)"), "md"),
]
MAX_AGE = timedelta(days=730)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_occurrence(month: int, day: int, ref: date) -> date | None:
    for year in (ref.year, ref.year + 1, ref.year + 2):
        candidate = _safe_date(year, month, day)
        if candidate and candidate >= ref:
            return candidate
    return None


def _from_match(kind: str, match: re.Match[str], ref: date) -> date | None:
    if kind in ("ymd8", "iso"):
        return _safe_date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if kind == "mdy":
        month, day, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
        if year < 100:
            year += 2000
        return _safe_date(year, month, day)
    if kind == "md":
        return _next_occurrence(int(match.group(1)), int(match.group(2)), ref)
    text = match.group(0).replace(" of ", " ")
    default = datetime(ref.year, 1, 1)
    try:
        parsed = dateutil_parser.parse(text, default=default, fuzzy=True).date()
    except (ValueError, OverflowError):
        return None
    if kind == "text_no_year":
        return _next_occurrence(parsed.month, parsed.day, ref)
    if kind == "month_year":
        return _safe_date(parsed.year, parsed.month, 1)
    return parsed


def parse_move_in(text: object, reference: datetime | date) -> tuple[date | None, str | None]:
    """(date, None) for a readable date, (None, text) for a vague phrase, (None, None) for no answer."""
    if text is None:
        return None, None
    raw = re.sub(r"\s+", " ", str(text)).strip()
    if raw.casefold().strip(".") in NOT_ANSWERED:
        return None, None
    ref = reference.date() if isinstance(reference, datetime) else reference
    for pattern, kind in _PATTERNS:
        match = pattern.search(raw)
        if not match:
            continue
        found = _from_match(kind, match, ref)
        if found is None:
            continue
        if found < ref - MAX_AGE or found > ref + timedelta(days=3650):
            return None, None  # garbage from a feed, not a plan
        return found, None
    return None, raw[:120]
