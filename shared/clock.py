"""The one clock every time rule reads, so SLAs, offers, reminders, sequences and quiet hours are testable.

Code asks `clock.now()` (aware UTC) instead of `datetime.now(UTC)`, and passes the value into SQL as a
parameter instead of calling PostgreSQL's `now()` for anything a rule decides on. Tests swap the process
clock with `use_clock(FakeClock(...))` (the `clock` fixture in tests/conftest.py) and move time with
`advance()`: no sleeps. The API and the worker in one test process read the same clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until told to move."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = moment.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**parts)
        return self._now


_current: Clock = SystemClock()


def now() -> datetime:
    """The current time as an aware UTC datetime, from the process clock."""
    return _current.now()


def current() -> Clock:
    return _current


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Swap the process clock for the duration of the block (tests)."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous
