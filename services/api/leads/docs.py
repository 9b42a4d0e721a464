"""OpenAPI documentation of the extra problem responses lead-related routes can answer."""

from __future__ import annotations

from typing import Any

from services.api.problems import PROBLEM_MEDIA_TYPE, Problem

_DESCRIPTIONS = {
    409: "Business conflict (e.g. a status move not allowed: `allowed` lists the targets; duplicate contact)",
    410: "The contact was erased on request (`erased_at`); its leads stay, its personal data is gone",
    412: "If-Match does not match the lead's current ETag",
    428: "If-Match header required",
}


def problem_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _DESCRIPTIONS[status], "model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}
        for status in statuses
    }
