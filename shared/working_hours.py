"""Weekly working hours in a place's local time: who is on shift, when a quiet period ends, SLA clocks.

One rule for every time window the product reads (agents' hours on a property team, tour slots, quiet
hours, SLA "in working hours", response time in working hours). Windows are local wall-clock times in the
property's IANA timezone; converting each day separately keeps them right across DST changes (a 09:00 start
is 09:00 local on both sides of the change). A window may not cross midnight: write two.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: time = Field(description="local start, HH:MM")
    end: time = Field(description="local end, HH:MM, after start (a window never crosses midnight)")

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start (split a window that crosses midnight in two)")
        return self


class WorkingHours(BaseModel):
    """Windows per weekday; a day that is absent or empty is off."""

    model_config = ConfigDict(extra="forbid")

    mon: list[TimeWindow] = Field(default_factory=list)
    tue: list[TimeWindow] = Field(default_factory=list)
    wed: list[TimeWindow] = Field(default_factory=list)
    thu: list[TimeWindow] = Field(default_factory=list)
    fri: list[TimeWindow] = Field(default_factory=list)
    sat: list[TimeWindow] = Field(default_factory=list)
    sun: list[TimeWindow] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_overlaps(self) -> WorkingHours:
        for day in DAYS:
            windows = sorted(getattr(self, day), key=lambda w: w.start)
            for before, after in pairwise(windows):
                if after.start < before.end:
                    raise ValueError(
                        f"{day}: windows {before.start:%H:%M}-{before.end:%H:%M} and "
                        f"{after.start:%H:%M}-{after.end:%H:%M} overlap"
                    )
        return self

    @classmethod
    def every_day(cls, start: time, end: time) -> WorkingHours:
        window = [TimeWindow(start=start, end=end)]
        return cls(**{day: window for day in DAYS})

    def windows_on(self, day: date, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """That local day's windows as aware UTC intervals, in order."""
        out = []
        for window in sorted(getattr(self, DAYS[day.weekday()]), key=lambda w: w.start):
            start = _local(day, window.start, tz)
            end = _local(day, window.end, tz)
            if end > start:
                out.append((start, end))
        return out

    def is_open(self, at: datetime, tz: ZoneInfo) -> bool:
        local_day = at.astimezone(tz).date()
        return any(start <= at < end for start, end in self.windows_on(local_day, tz))

    def next_open(self, at: datetime, tz: ZoneInfo, *, horizon_days: int = 8) -> datetime | None:
        """`at` itself when open, else the start of the next window (None when no window within the horizon)."""
        local_day = at.astimezone(tz).date()
        for offset in range(horizon_days + 1):
            for start, end in self.windows_on(local_day + timedelta(days=offset), tz):
                if end <= at:
                    continue
                return max(start, at)
        return None

    def open_seconds_between(self, start: datetime, end: datetime, tz: ZoneInfo) -> float:
        """Seconds of [start, end) that fall inside working hours (SLA and response time in working hours)."""
        if end <= start:
            return 0.0
        total = 0.0
        day = start.astimezone(tz).date()
        last = end.astimezone(tz).date()
        while day <= last:
            for window_start, window_end in self.windows_on(day, tz):
                overlap = (min(end, window_end) - max(start, window_start)).total_seconds()
                total += max(0.0, overlap)
            day += timedelta(days=1)
        return total


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """Local wall-clock time to UTC. zoneinfo reads a time skipped by a spring-forward jump with the offset
    before the jump (fold=0), so 02:30 on that night lands at 03:30 local, as clocks do; a repeated hour
    in the fall takes its first occurrence."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def zone(name: str | None, default: str = "America/New_York") -> ZoneInfo:
    return ZoneInfo(name or default)
