"""Signed link tokens: round trip, purpose binding, tampering and expiry on the injectable clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.clock import FakeClock
from shared.signing import BadToken, sign, verify


def test_round_trip_and_purpose_binding(clock: FakeClock) -> None:
    token = sign("k1", "offer", {"offer_id": "abc", "action": "accept"}, clock.now() + timedelta(minutes=5))
    assert verify("k1", "offer", token) == {"offer_id": "abc", "action": "accept"}
    with pytest.raises(BadToken):
        verify("k1", "unsubscribe", token)
    with pytest.raises(BadToken):
        verify("k2", "offer", token)


def test_tampered_and_malformed_tokens_are_refused() -> None:
    token = sign("k1", "offer", {"offer_id": "abc"})
    body, mac = token.split(".")
    forged = sign("k1", "offer", {"offer_id": "xyz"}).split(".")[0]
    for bad in (f"{forged}.{mac}", f"{body}.{mac[:-2]}", "nonsense", "", "a.b.c", "%%%.%%%"):
        with pytest.raises(BadToken):
            verify("k1", "offer", bad)


def test_expiry_follows_the_clock(clock: FakeClock) -> None:
    token = sign("k1", "calendar", {"user_id": "u"}, clock.now() + timedelta(minutes=5))
    clock.advance(minutes=4)
    assert verify("k1", "calendar", token) == {"user_id": "u"}
    clock.advance(minutes=1)
    with pytest.raises(BadToken):
        verify("k1", "calendar", token)
