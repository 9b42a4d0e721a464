"""Every corpus case through `parse()`: outcome, reason and the normalized fields that matter."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from services.intake.parsers import Outcome, ParseContext, ParseResult, RawInbound, parse
from services.intake.parsers.base import ParseResult as BaseParseResult
from shared.enums import InboundKind
from shared.normalize import is_relay_email
from tests.corpus.loader import CorpusCase, corpus_parse_context, load_corpus, subset_match

CORPUS = load_corpus()
CONTEXT = corpus_parse_context()
END_TO_END_ONLY = ("property_name", "lead")  # checked by tests/intake/test_pipeline_e2e.py


def as_dict(result: ParseResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome.value,
        "reason": result.reason,
        "parser": result.parser,
        "signal": result.signal.model_dump(mode="json") if result.signal else None,
        "property": result.property.model_dump(mode="json") if result.property else None,
    }


@pytest.mark.parametrize("case", CORPUS, ids=str)
def test_corpus_case(case: CorpusCase) -> None:
    result = parse(case.raw, CONTEXT)
    assert isinstance(result, BaseParseResult)
    expected = {key: value for key, value in case.expected.items() if key not in END_TO_END_ONLY}
    problems = subset_match(expected, as_dict(result))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", CORPUS, ids=str)
def test_relay_is_never_contact_email(case: CorpusCase) -> None:
    result = parse(case.raw, CONTEXT)
    if result.signal is not None:
        assert not is_relay_email(result.signal.contact.email)
        assert result.signal.occurred_at.tzinfo is not None


def test_corpus_is_broad() -> None:
    kinds = Counter(case.kind for case in CORPUS)
    assert len(CORPUS) >= 70
    assert set(kinds) == set(InboundKind)
    outcomes = Counter(case.expected["outcome"] for case in CORPUS)
    assert outcomes["ignored"] >= 5 and outcomes["failed"] >= 5


@pytest.mark.parametrize("kind", list(InboundKind))
@pytest.mark.parametrize("body", [b"\xff\xfe\x00garbage", b"{}", b"[]", b"<x/>", b"a=1&b=2", b"   "])
def test_garbage_never_raises(kind: InboundKind, body: bytes) -> None:
    for content_type in (
        "application/json",
        "application/x-www-form-urlencoded",
        "text/xml",
        "",
        "multipart/form-data",
    ):
        raw = RawInbound(kind, body, content_type, CORPUS[0].raw.received_at)
        result = parse(raw, ParseContext())
        assert result.outcome in (Outcome.failed, Outcome.ignored, Outcome.signal)
        if result.outcome is Outcome.failed:
            assert result.reason


def test_crash_becomes_failed_without_personal_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.intake import parsers

    def boom(raw: RawInbound, ctx: ParseContext) -> ParseResult:
        raise RuntimeError("jane.doe@example.com +15125550142")

    monkeypatch.setitem(parsers.PARSERS, InboundKind.web_form, boom)
    result = parse(RawInbound(InboundKind.web_form, b"{}", "application/json", CORPUS[0].raw.received_at))
    assert result.outcome is Outcome.failed
    assert result.reason == "parser error: RuntimeError"


def test_own_address_is_not_a_lead() -> None:
    case = next(c for c in CORPUS if c.name == "email/generic_direct_inquiry")
    ctx = ParseContext(own_emails=frozenset({"isabel.ruiz@example.com"}))
    assert parse(case.raw, ctx).outcome is Outcome.ignored


def test_move_in_year_follows_message_date() -> None:
    case = next(c for c in CORPUS if c.name == "email/realtor_rental_no_year_move_date")
    body = case.raw.body.replace(b"Sat, 20 Sep 2025", b"Sun, 15 Sep 2024")
    result = parse(replace(case.raw, body=body), ParseContext())
    assert result.signal is not None
    assert str(result.signal.preferences.move_in_date) == "2024-10-04"


def test_configured_alias_wins_for_property_hint() -> None:
    case = next(c for c in CORPUS if c.name == "sendgrid/parsed_fields_zillow")
    result = parse(case.raw, ParseContext(own_emails=frozenset({"leasing+elm@inbound.guestcard.test"})))
    assert result.signal is not None
    assert result.signal.property.inbound_alias == "leasing+elm@inbound.guestcard.test"
