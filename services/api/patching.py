"""PATCH semantics shared by every resource: only the fields sent change (`exclude_unset`), and a null sent
for a column that cannot be null leaves it as it was."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def apply_patch(row: Any, changes: dict[str, Any], not_nullable: Iterable[str]) -> dict[str, Any]:
    """Set the sent fields on the row; returns what was applied."""
    keep = set(not_nullable)
    applied = {key: value for key, value in changes.items() if not (value is None and key in keep)}
    for key, value in applied.items():
        setattr(row, key, value)
    return applied
