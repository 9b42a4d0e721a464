"""Quiet hours: when proactive automated SMS may go out, in the property's timezone.

The rule (docs/messaging.md): a *proactive* automated SMS (follow-up, sequence step, reminder, reactivation,
digest) waits for the next allowed minute; a reply to something the renter just did (missed-call text-back,
acknowledgement) goes out at once, at any hour, because speed to lead is the point; a person's send goes out
with a `quiet_hours` warning; email and staff notifications are not held back.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from shared.working_hours import WorkingHours, zone

DEFAULT_ALLOWED = WorkingHours.every_day(time(9, 0), time(20, 0))


def allowed_hours(document: dict[str, Any] | None) -> WorkingHours:
    return WorkingHours.model_validate(document) if document else DEFAULT_ALLOWED


def next_allowed(at: datetime, timezone: str | None, document: dict[str, Any] | None = None) -> datetime:
    """`at` when SMS may go out then, else the start of the next allowed window (minute precision)."""
    hours = allowed_hours(document)
    moment = hours.next_open(at, zone(timezone))
    return moment if moment is not None else at


def is_quiet(at: datetime, timezone: str | None, document: dict[str, Any] | None = None) -> bool:
    return not allowed_hours(document).is_open(at, zone(timezone))
