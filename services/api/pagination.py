"""Opaque keyset cursors: stable under inserts, O(limit) at any depth."""

from __future__ import annotations

import base64
import json
from typing import Any

from shared.errors import ValidationFailed


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, json.JSONDecodeError) as error:
        raise ValidationFailed(
            "The cursor is not valid.", errors=[{"field": "query.cursor", "message": "malformed cursor"}]
        ) from error
    if not isinstance(values, list):
        raise ValidationFailed("The cursor is not valid.", errors=[{"field": "query.cursor", "message": "malformed"}])
    return values
