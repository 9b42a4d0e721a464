"""The injectable clock: services read it, so time rules are tested by moving it, never by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import clock as clock_module
from shared.clock import FakeClock, use_clock


def test_fake_clock_stands_still_and_advances(clock: FakeClock) -> None:
    start = clock_module.now()
    assert clock_module.now() == start
    assert clock.advance(minutes=90) == start + timedelta(minutes=90)
    assert clock_module.now() == start + timedelta(minutes=90)


def test_use_clock_restores_the_system_clock() -> None:
    frozen = datetime(2020, 1, 1, tzinfo=UTC)
    with use_clock(FakeClock(frozen)):
        assert clock_module.now() == frozen
    assert clock_module.now() > frozen + timedelta(days=365)


def test_fake_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        FakeClock(datetime(2026, 1, 1))


async def test_a_lead_created_under_the_clock_carries_its_time(client, org, clock: FakeClock) -> None:
    created = await client.post(
        "/v1/leads", headers=org.headers, json={"first_name": "Ada", "email": "ada@example.com"}
    )
    assert created.status_code == 201, created.text
    assert datetime.fromisoformat(created.json()["created_at"]) == clock.now()
