"""Working hours: local windows stay local across DST, overlaps are refused, SLA seconds count only open time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shared.working_hours import WorkingHours

NY = ZoneInfo("America/New_York")
NINE_TO_FIVE = {"mon": [{"start": "09:00", "end": "17:00"}], "tue": [{"start": "09:00", "end": "17:00"}]}


def test_windows_follow_local_time_across_the_dst_change() -> None:
    hours = WorkingHours.every_day(time(9), time(17))
    # US DST ended Sunday 2026-11-01: 09:00 EDT is 13:00 UTC before, 09:00 EST is 14:00 UTC after
    assert hours.windows_on(date(2026, 10, 31), NY)[0][0] == datetime(2026, 10, 31, 13, tzinfo=UTC)
    assert hours.windows_on(date(2026, 11, 2), NY)[0][0] == datetime(2026, 11, 2, 14, tzinfo=UTC)


def test_a_start_inside_the_spring_forward_gap_moves_forward() -> None:
    hours = WorkingHours.every_day(time(2, 30), time(5))
    start, _ = hours.windows_on(date(2026, 3, 8), NY)[0]  # 02:30 does not exist that night in New York
    assert start == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT


def test_is_open_and_next_open() -> None:
    hours = WorkingHours.model_validate(NINE_TO_FIVE)
    monday_8am = datetime(2026, 6, 1, 12, tzinfo=UTC)  # 08:00 EDT
    assert not hours.is_open(monday_8am, NY)
    assert hours.next_open(monday_8am, NY) == datetime(2026, 6, 1, 13, tzinfo=UTC)
    assert hours.is_open(datetime(2026, 6, 1, 13, tzinfo=UTC), NY)
    tuesday_6pm = datetime(2026, 6, 2, 22, tzinfo=UTC)
    assert hours.next_open(tuesday_6pm, NY) == datetime(2026, 6, 8, 13, tzinfo=UTC)  # next Monday
    assert WorkingHours().next_open(monday_8am, NY) is None


def test_open_seconds_between_counts_only_open_time() -> None:
    hours = WorkingHours.model_validate(NINE_TO_FIVE)
    start = datetime(2026, 6, 1, 20, 30, tzinfo=UTC)  # Monday 16:30 EDT
    end = datetime(2026, 6, 2, 13, 30, tzinfo=UTC)  # Tuesday 09:30 EDT
    assert hours.open_seconds_between(start, end, NY) == 3600


@pytest.mark.parametrize(
    "bad",
    [
        {"mon": [{"start": "17:00", "end": "09:00"}]},
        {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]},
        {"funday": []},
    ],
)
def test_bad_hours_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        WorkingHours.model_validate(bad)
