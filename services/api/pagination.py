"""Opaque keyset cursors: stable under inserts, O(limit) at any depth."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from shared.errors import ValidationFailed


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def bad_cursor(message: str = "malformed cursor") -> ValidationFailed:
    """The 422 of a cursor this endpoint did not hand out, naming `query.cursor`."""
    return ValidationFailed("The cursor is not valid.", errors=[{"field": "query.cursor", "message": message}])


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, json.JSONDecodeError) as error:
        raise bad_cursor() from error
    if not isinstance(values, list):
        raise bad_cursor("malformed")
    return values


def time_keyset(cursor: str, leading: int = 0) -> tuple[list[Any], tuple[datetime, uuid.UUID]]:
    """A cursor of `[*leading values, timestamp, id]`: the leading values and the (timestamp, id) position it
    continues after; a 422 naming `query.cursor` when it is not one."""
    try:
        *head, raw_at, raw_id = decode_cursor(cursor)
        if len(head) != leading:
            raise ValueError(f"{len(head)} leading values, not {leading}")
        return head, (datetime.fromisoformat(raw_at), uuid.UUID(raw_id))
    except (ValueError, TypeError) as error:
        raise bad_cursor() from error
