"""The contract as the router's referee: which methods a path serves, read from the app's own OpenAPI.

A UUID path parameter only names a UUID-shaped segment, so `/v1/leads/invitations` is its own resource
(405 for a method it lacks), not `/v1/leads/{lead_id}` with a bad id (422); a segment that names nothing is
a 404. A 405 lists every method any operation serves at that path (Starlette lists only the first route's).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from fastapi import FastAPI

UUID_SEGMENT = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
_PARAM = re.compile(r"{(\w+)}")
_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _segment(template: str, operations: dict[str, Any]) -> re.Pattern[str]:
    uuid_params = {
        param["name"]
        for operation in operations.values()
        if isinstance(operation, dict)
        for param in operation.get("parameters", [])
        if param.get("in") == "path" and param.get("schema", {}).get("format") == "uuid"
    }
    pattern = ""
    last = 0
    for found in _PARAM.finditer(template):
        pattern += re.escape(template[last : found.start()])
        pattern += f"(?:{UUID_SEGMENT})" if found.group(1) in uuid_params else "[^/]+"
        last = found.end()
    return re.compile(pattern + re.escape(template[last:]) + "$")


@lru_cache(maxsize=8)
def _paths(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    result = []
    for template, operations in app.openapi().get("paths", {}).items():
        methods = frozenset(method.upper() for method in operations if method in _HTTP_METHODS)
        result.append((_segment(template, operations), methods))
    return result


def allowed_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the contract serves at `path`; None when no documented path matches it."""
    found: set[str] = set()
    matched = False
    for pattern, methods in _paths(app):
        if pattern.match(path):
            matched = True
            found |= methods
    return sorted(found) if matched else None
