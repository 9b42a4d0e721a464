"""Request field types that say in the schema what the code accepts, so the contract tells the truth."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def _is_number(value: Any) -> bool:
    """What pydantic's lax mode would read as a Unix time: a number, or text that is one (`0.5`, `1e-177`, `inf`)."""
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _iso_only(value: Any) -> Any:
    """pydantic's lax mode reads `0.5` as a Unix time; the schema promises an ISO 8601 date-time."""
    if _is_number(value):
        raise ValueError("expected an ISO 8601 date-time, e.g. 2026-06-01T09:00:00-04:00")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


def uuid_or(*words: str) -> str:
    """A query pattern: a UUID or one of `words` (e.g. `none`, `me`)."""
    return "^(" + "|".join([*map(re.escape, words), UUID_PATTERN]) + ")$"


def _iso_date_only(value: Any) -> Any:
    """pydantic's lax mode reads `0` as a Unix time for a date too; the schema promises an ISO 8601 date."""
    if _is_number(value):
        raise ValueError("expected an ISO 8601 date, e.g. 2026-06-01")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
