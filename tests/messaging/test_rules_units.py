"""Pure rules of messaging: SMS segments (GSM-7 vs UCS-2), template variables, the sensitive phrase lists,
quiet hours, SMS keywords."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api.messaging.quiet_hours import is_quiet, next_allowed
from services.api.messaging.sensitive import PHRASES, detect
from services.api.messaging.templates import check_variables, render, sms_length
from services.intake.parsers.common import keyword_event
from shared.enums import SignalEvent
from shared.errors import ValidationFailed


@pytest.mark.parametrize(
    ("body", "encoding", "units", "segments"),
    [
        ("", "gsm7", 0, 0),
        ("a" * 160, "gsm7", 160, 1),
        ("a" * 161, "gsm7", 161, 2),
        ("a" * 306, "gsm7", 306, 2),
        ("a" * 307, "gsm7", 307, 3),
        ("€" * 80, "gsm7", 160, 1),  # extension characters take two septets
        ("[" * 81, "gsm7", 162, 2),
        ("é" * 160, "gsm7", 160, 1),  # é is in the GSM-7 basic set
        ("ç" + "a" * 69, "ucs2", 70, 1),  # ç (lowercase) is not: the whole message becomes UCS-2
        ("ç" + "a" * 70, "ucs2", 71, 2),
        ("🏠" * 35, "ucs2", 70, 1),  # an emoji is two UTF-16 units
        ("🏠" * 34 + "ab", "ucs2", 70, 1),
        ("a" * 134 + "’", "ucs2", 135, 3),  # a curly apostrophe makes a long text UCS-2: 67 per segment
    ],
)
def test_sms_segments(body: str, encoding: str, units: int, segments: int) -> None:
    length = sms_length(body)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


def test_unknown_variable_is_named() -> None:
    with pytest.raises(ValidationFailed) as raised:
        check_variables({"body": "Hi {{ first_name }}, your {{tour_tme}} is set", "subject": None})
    assert "tour_tme" in str(raised.value)
    assert raised.value.errors == [{"field": "body.body", "message": "unknown variable 'tour_tme'"}]
    assert render("Hi {{ first_name }}!", {"first_name": "Lena"}) == "Hi Lena!"


@pytest.mark.parametrize(
    ("text", "category", "phrase"),
    [
        ("Do you take Section 8?", "fair_housing_voucher", "section 8"),
        ("I have a housing choice voucher", "fair_housing_voucher", "housing choice voucher"),
        ("Are kids allowed? I have 3", "fair_housing_familial_status", "kids allowed"),
        ("I'm pregnant, is there room for a crib", "fair_housing_familial_status", "pregnant"),
        ("I use a wheelchair, any steps?", "fair_housing_disability", "wheelchair"),
        ("I need a reasonable accommodation", "fair_housing_disability", "reasonable accommodation"),
        ("My service dog comes with me", "fair_housing_assistance_animal", "service dog"),
        ("I have an ESA letter for my cat", "fair_housing_assistance_animal", "esa letter"),
        ("Is there a ramp to the entrance?", "fair_housing_accessibility", "ramp"),
        ("I don't have a green card yet", "fair_housing_national_origin", "green card"),
        ("Is there a mosque nearby?", "fair_housing_religion", "mosque"),
        ("My lawyer will hear about this", "angry_or_legal", "lawyer"),
        ("This is DISCRIMINATION", "angry_or_legal", "discrimination"),
        ("I want a refund of the application fee", "payment_dispute", "refund"),
        ("You charged twice on my card", "payment_dispute", "charged twice"),
    ],
)
def test_sensitive_phrases_hit_with_category_and_phrase(text: str, category: str, phrase: str) -> None:
    hit = detect(text)
    assert hit is not None and (hit.category, hit.phrase) == (category, phrase)


@pytest.mark.parametrize(
    "text",
    [
        "Is the 2 bedroom still available?",
        "Can I tour Saturday at 11?",
        "I have a small dog, is there a pet fee?",
        "Hi, I'm Ada, moving in June",
        "Is the application fee refundable?",
        "The unit on Church Street looks great",
        "",
        None,
    ],
)
def test_ordinary_messages_are_not_sensitive(text: str | None) -> None:
    assert detect(text) is None


def test_every_category_has_phrases() -> None:
    assert all(PHRASES.values()) and len(PHRASES) == 9


def test_quiet_hours_default_window_in_the_property_timezone() -> None:
    late = datetime(2026, 6, 3, 3, 0, tzinfo=UTC)  # 23:00 New York
    assert is_quiet(late, "America/New_York")
    assert next_allowed(late, "America/New_York") == datetime(2026, 6, 3, 13, 0, tzinfo=UTC)
    assert is_quiet(late, "America/Los_Angeles")  # 20:00 in LA: the window ends at 20:00 (exclusive)
    assert not is_quiet(datetime(2026, 6, 3, 2, 59, tzinfo=UTC), "America/Los_Angeles")  # 19:59 there
    assert next_allowed(datetime(2026, 6, 2, 18, 0, tzinfo=UTC), "America/New_York") == datetime(
        2026, 6, 2, 18, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop. ", "STOPALL", "Unsubscribe", "CANCEL", "end", "QUIT"])
def test_opt_out_keywords_in_any_case(word: str) -> None:
    assert keyword_event(word) == SignalEvent.opt_out


def test_start_and_help_keywords() -> None:
    assert keyword_event("start") == SignalEvent.opt_in
    assert keyword_event("HELP") == SignalEvent.help
    assert keyword_event("please stop calling me at work") == SignalEvent.sms_inbound
