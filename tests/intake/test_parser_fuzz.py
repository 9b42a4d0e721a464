"""Parsers under mutated real-format payloads: a parser may refuse (ignored/failed with a reason), never crash.

Every corpus delivery is mutated by hypothesis (bytes flipped, cut, duplicated, spliced with hostile
fragments: invalid UTF-8, odd charsets, deep JSON, XML entity bombs, NULs) and parsed. A result that says
`parser error: …` means a parser raised something other than its own refusal: that is the bug this finds.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.parsers import PARSERS, parse
from services.intake.parsers.base import Outcome, ParseContext, ParseResult, RawInbound
from tests.corpus.loader import load_corpus

CASES = load_corpus()
# per corpus case; `.ci/run` runs a longer pass with GUESTCARD_FUZZ_EXAMPLES
EXAMPLES = int(os.environ.get("GUESTCARD_FUZZ_EXAMPLES", "6"))
HOSTILE = [
    b"\xff\xfe\xfd",  # invalid UTF-8
    b"\x00",
    "caf\u00e9 \u2603 \U0001f600".encode("utf-16"),
    "Ren\u00e9e".encode("latin-1"),
    b"[" * 5000 + b"]" * 5000,  # deep JSON
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    b"<lolz>&lol2;</lolz>",  # entity expansion
    b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>',  # external entity
    b"=?utf-8?B?////?=",
    b"--boundary\r\nContent-Disposition: form-data\r\n\r\n",
    b"%ZZ%00&&==",
]


def _mutations(body: bytes) -> st.SearchStrategy[bytes]:
    cut = st.integers(0, max(0, len(body)))
    return st.one_of(
        cut.map(lambda i: body[:i]),
        st.tuples(cut, st.sampled_from(HOSTILE)).map(lambda t: body[: t[0]] + t[1] + body[t[0] :]),
        st.tuples(cut, st.binary(min_size=1, max_size=64)).map(lambda t: body[: t[0]] + t[1] + body[t[0] :]),
        st.tuples(cut, cut).map(lambda t: body[: min(t)] + body[max(t) :]),
        st.sampled_from(HOSTILE),
    )


def _crash(result: ParseResult) -> bool:
    return result.outcome == Outcome.failed and (result.reason or "").startswith("parser error")


def _traceback(raw: RawInbound) -> str:
    """Run the kind's parser bare, so a crash's report shows where it happened."""
    try:
        PARSERS[raw.kind](raw, ParseContext())
    except Exception:
        return traceback.format_exc()
    return "no exception on a second run"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_mutated_payloads_never_crash_a_parser(case) -> None:  # type: ignore[no-untyped-def]
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(body=_mutations(case.raw.body))
    def check(body: bytes) -> None:
        raw = replace(case.raw, body=body)
        result = parse(raw)
        assert isinstance(result, ParseResult)
        assert not _crash(result), _traceback(raw)
        if result.outcome != Outcome.signal:
            assert result.reason, "a refusal names its reason"

    check()


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_bodies_are_refused_with_a_reason_for_every_kind(body: bytes) -> None:
    kinds = {case.kind: case for case in CASES}
    for case in kinds.values():
        raw = replace(case.raw, body=body)
        result = parse(raw)
        assert not _crash(result), _traceback(raw)
        assert result.outcome != Outcome.signal or result.signal is not None
