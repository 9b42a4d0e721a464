"""Normalization rules from intake-formats.md §9, one assertion per pitfall."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nameparser import HumanName
from nameparser.config.regexes import REGEXES

from shared.normalize import (
    is_placeholder_email,
    is_relay_email,
    normalize_email,
    normalize_phone,
    parse_money_range,
    parse_move_in,
    split_name,
)

ROMAN_NUMERAL = REGEXES["roman_numeral"]
REF = datetime(2025, 9, 20, 12, 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("703.868.3162", ("+17038683162", None)),
        ("(650) 555-5555", ("+16505555555", None)),
        ("tel://6505555555", ("+16505555555", None)),
        ("tel:703-868-3162", ("+17038683162", None)),
        ("+12123901698", ("+12123901698", None)),
        ("4156045334", ("+14156045334", None)),
        ("+1 512 555 0100 ext 2", ("+15125550100", "2")),
        ("512-555-0142 x3", ("+15125550142", "3")),
        (17038683162, ("+17038683162", None)),
        ("tel:%2B17038683162", ("+17038683162", None)),
        ("1 (703) 868-3162", ("+17038683162", None)),
        (15550000000, (None, None)),  # Webflow docs sample: area code 555 does not exist
        ("+266696687", (None, None)),
        ("+7378742833", (None, None)),
        ("+86282452253", (None, None)),
        ("anonymous", (None, None)),
        ("Restricted", (None, None)),
        ("unavailable", (None, None)),
        ("unknown", (None, None)),
        ("0000000000", (None, None)),
        ("000-000-0000", (None, None)),
        ("12345", (None, None)),
        ("", (None, None)),
        (None, (None, None)),
        (True, (None, None)),
    ],
)
def test_normalize_phone(raw: object, expected: tuple[str | None, str | None]) -> None:
    assert normalize_phone(raw) == expected


def test_normalize_phone_other_region() -> None:
    assert normalize_phone("020 7946 0958", "GB") == ("+442079460958", None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mailto:Foo.Bar+apt@Gmail.com?subject=Re%3A%20hi&body=x", "foo.bar+apt@gmail.com"),
        ("  <Jane.Doe@Example.COM> ", "jane.doe@example.com"),
        ("Jane Doe <jane@example.com>", "jane@example.com"),
        ("ｊａｎｅ@example.com", "jane@example.com"),  # NFKC folds full-width letters
        ("0", None),
        ("not an email", None),
        ("jane@", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_email(raw: object, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("addr", "relay"),
    [
        ("3kq9v2m7x1@convo.zillow.com", True),
        ("k7x2p9@zlead.co", True),
        ("reply-7f3k2q@email.rent.com", True),
        ("reply@email.rent.com", False),
        ("jane@example.com", False),
        ("", False),
    ],
)
def test_is_relay_email(addr: str, relay: bool) -> None:
    assert is_relay_email(addr) is relay


@pytest.mark.parametrize(
    ("addr", "placeholder"),
    [
        ("none@none.com", True),
        ("noemail@gmail.com", True),
        ("test@test.com", True),
        ("na@na.com", True),
        ("jane@example.com", False),
        ("test.user@gmail.com", False),
    ],
)
def test_is_placeholder_email(addr: str, placeholder: bool) -> None:
    assert is_placeholder_email(addr) is placeholder


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("carlos franceschini", ("Carlos Franceschini", "Carlos", "Franceschini")),
        ("MARY O'BRIEN", ("Mary O'Brien", "Mary", "O'Brien")),
        ("john mcdonald", ("John McDonald", "John", "McDonald")),
        ("anne-marie smith-jones", ("Anne-Marie Smith-Jones", "Anne-Marie", "Smith-Jones")),
        ("Alex cabral", ("Alex Cabral", "Alex", "Cabral")),
        ("Ms. Gray", ("Ms. Gray", None, "Gray")),
        ("Rosa Noakes [me.com]", ("Rosa Noakes", "Rosa", "Noakes")),
        ("Rosa Noakes \\[me.com\\]", ("Rosa Noakes", "Rosa", "Noakes")),
        ("John Q. Public", ("John Q. Public", "John", "Public")),
        ("DeShawn McKay", ("DeShawn McKay", "DeShawn", "McKay")),
        ("Cher", ("Cher", "Cher", None)),
        ("Dana Vi", ("Dana Vi", "Dana", "Vi")),  # nameparser reads "Vi" as a suffix (VI): with no surname, it is one
        ("dana vi", ("Dana Vi", "Dana", "Vi")),
        ("John Smith III", ("John Smith III", "John", "Smith")),
        ("Mary Ann Vi", ("Mary Ann Vi", "Mary", "Vi")),  # a middle name before it: typed like a name, it is one
        ("Nguyen Van Vi", ("Nguyen Van Vi", "Nguyen", "Vi")),
        ("John Doe VI", ("John Doe VI", "John", "Doe")),  # written in capitals: a generation
        ("John Doe iv", ("John Doe Iv", "John", "Doe")),  # lowercase in a cased name says nothing: nameparser's reading
        ("MARY ANN VI", ("Mary Ann VI", "Mary", "Ann")),  # no casing at all: nameparser's reading
        ("Dana Vi Jr.", ("Dana Vi Jr.", "Dana", "Vi")),
        ("96 New message", (None, None, None)),
        ("jane@example.com", (None, None, None)),
        ("", (None, None, None)),
        (None, (None, None, None)),
    ],
)
def test_split_name(raw: object, expected: tuple[str | None, str | None, str | None]) -> None:
    assert split_name(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Oct 01, 2025", (date(2025, 10, 1), None)),
        ("July 01, 2026", (date(2026, 7, 1), None)),
        ("11/15/2025", (date(2025, 11, 15), None)),
        ("20260901", (date(2026, 9, 1), None)),
        ("2025-10-01T00:00:00", (date(2025, 10, 1), None)),
        ("Sep 25", (date(2025, 9, 25), None)),
        ("Sep 15", (date(2026, 9, 15), None)),  # already past this year: next year
        ("I plan to move on Oct 04", (date(2025, 10, 4), None)),
        ("Sep 20", (date(2025, 9, 20), None)),  # the reference day itself counts
        ("immediately", (None, "immediately")),
        ("ASAP", (None, "ASAP")),
        ("flexible", (None, "flexible")),
        ("Not answered", (None, None)),
        ("", (None, None)),
        (None, (None, None)),
        ("08/29/2017", (None, None)),  # > 2 years before the reference: garbage
        ("1925-03-01", (None, None)),
        ("02/30/2026", (None, "02/30/2026")),  # impossible date is kept as text, never invented
    ],
)
def test_parse_move_in(text: object, expected: tuple[date | None, str | None]) -> None:
    assert parse_move_in(text, REF) == expected


def test_parse_move_in_old_reference_keeps_old_dates() -> None:
    assert parse_move_in("08/29/2017", datetime(2017, 8, 20)) == (date(2017, 8, 29), None)
    assert parse_move_in("Jan 15", date(2025, 12, 10)) == (date(2026, 1, 15), None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,500", (1500, 1500)),
        ("$1500-$2000", (1500, 2000)),
        ("$2000 - $1500", (1500, 2000)),
        ("1.5k", (1500, 1500)),
        ("1.5k-2k", (1500, 2000)),
        ("$3,175+", (3175, None)),
        ("under $2,000", (None, 2000)),
        ("up to 1800", (None, 1800)),
        ("$1,234.56", (1235, 1235)),
        (1800, (1800, 1800)),
        ("no idea", (None, None)),
        (None, (None, None)),
    ],
)
def test_parse_money_range(text: object, expected: tuple[int | None, int | None]) -> None:
    assert parse_money_range(text) == expected


_NAME_WORDS = [
    *("Dana", "Reyes", "Mary", "Lee"),
    *("Jr", "Dr", "Van", "And", "Sir", "Abu", "Mc", "King", "Ms", "Ii", "Esq", "Bin"),  # words nameparser knows
    *("Vi", "Iii", "Iv", "Ix", "Xi"),  # roman numerals (a suffix to nameparser) and a word that only looks like one
]


@settings(max_examples=300, deadline=None)
@given(
    first=st.sampled_from(_NAME_WORDS) | st.from_regex(r"[A-Z][a-z]{1,8}", fullmatch=True),
    last=st.sampled_from(_NAME_WORDS) | st.from_regex(r"[A-Z][a-z]{1,8}", fullmatch=True),
)
def test_the_plain_two_word_shortcut_splits_as_nameparser_does(first: str, last: str) -> None:
    """split_name skips nameparser for `First Last`; whatever the two words, the answer is nameparser's."""
    full = f"{first} {last}"
    human = HumanName(full)
    expected_first, expected_last = human.first or None, human.last or None
    if human.title and expected_first and not expected_last:
        expected_first, expected_last = None, expected_first
    if expected_first and not expected_last and human.suffix and ROMAN_NUMERAL.match(human.suffix.upper()):
        expected_last = human.suffix  # a lone roman numeral after a first name is the surname (split_name's rule)
    assert split_name(full) == (full, expected_first, expected_last)
