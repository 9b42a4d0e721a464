"""The one-pattern prefilter in `sensitive.detect` never changes an answer: for any text, detect gives what
the ordered per-phrase search alone gives (category and phrase)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.api.messaging import sensitive

PHRASES = [phrase for phrases in sensitive.PHRASES.values() for phrase in phrases]
PIECES = st.one_of(
    st.sampled_from(PHRASES),
    st.sampled_from(PHRASES).map(lambda phrase: phrase[:-1]),  # almost a phrase
    st.sampled_from(PHRASES).map(lambda phrase: "x" + phrase),  # a phrase inside a word
    st.sampled_from(PHRASES).map(str.upper),
    st.text(alphabet="abc ’'-.\n0", max_size=6),
)


def ordered_search(text: str) -> sensitive.SensitiveHit | None:
    folded = " ".join(text.casefold().replace("’", "'").split())
    for category, patterns in sensitive._PATTERNS.items():
        for phrase, pattern in patterns:
            if pattern.search(folded):
                return sensitive.SensitiveHit(category, phrase)
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=6).map(" ".join))
def test_detect_answers_as_the_ordered_search_does(text: str) -> None:
    assert sensitive.detect(text) == ordered_search(text)


def test_every_phrase_is_found_and_plain_text_is_not() -> None:
    for phrase in PHRASES:
        assert sensitive.detect(f"Hello, {phrase.upper()}!") == ordered_search(f"Hello, {phrase}!") is not None
    assert sensitive.detect("Is the 2 bedroom still available? Can I tour Saturday?") is None
