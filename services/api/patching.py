"""PATCH semantics shared by every resource: only the fields sent change (`exclude_unset`), and a null sent
for a column that cannot be null is a 422 naming the field (clearing a required field is never silent)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.errors import ValidationFailed


def apply_patch(row: Any, changes: dict[str, Any], not_nullable: Iterable[str]) -> dict[str, Any]:
    """Set the sent fields on the row; returns what was applied."""
    cleared = sorted(key for key in not_nullable if key in changes and changes[key] is None)
    if cleared:
        raise ValidationFailed(
            f"{', '.join(cleared)} cannot be null.",
            errors=[{"field": f"body.{key}", "message": "cannot be null"} for key in cleared],
        )
    for key, value in changes.items():
        setattr(row, key, value)
    return dict(changes)
