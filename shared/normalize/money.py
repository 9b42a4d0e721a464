"""Monthly budget amounts in whole dollars.

Callers pass only text that is the renter's budget: listing prices and yearly income are never a budget
(intake-formats.md §9), so this function does not try to guess what a number means.
"""

from __future__ import annotations

import re

_AMOUNT = re.compile(r"\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*([kK])?(?![\d])")
_OPEN_HIGH = re.compile(r"\+|\band\s+up\b|\bor\s+more\b|\bat\s+least\b|\bover\b|\bmin(imum)?\b|\bfrom\b", re.I)
_OPEN_LOW = re.compile(r"\bunder\b|\bup\s+to\b|\bmax(imum)?\b|\bbelow\b|\bless\s+than\b|\bno\s+more\s+than\b|<", re.I)


def _amounts(text: str) -> list[int]:
    values = []
    for number, thousands in _AMOUNT.findall(text):
        value = float(number.replace(",", ""))
        if thousands:
            value *= 1000
        values.append(round(value))
    return [v for v in values if 0 < v < 1_000_000]


def parse_money_range(text: object) -> tuple[int | None, int | None]:
    """(min, max) in whole dollars; one bound None when the text is open-ended."""
    if text is None or isinstance(text, bool):
        return None, None
    if isinstance(text, int | float):
        value = round(text)
        return (value, value) if value > 0 else (None, None)
    raw = str(text)
    values = _amounts(raw)
    if not values:
        return None, None
    if len(values) >= 2:
        low, high = sorted(values[:2])
        return low, high
    value = values[0]
    if _OPEN_LOW.search(raw):
        return None, value
    if _OPEN_HIGH.search(raw):
        return value, None
    return value, value
