"""structlog setup: JSON lines with dotted event names and bound ids, never personal data.

A processor drops known personal keys and masks anything that looks like an email or phone number,
as a second line of defence behind the rule that code never logs them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_PERSONAL_KEYS = {
    "email",
    "phone",
    "name",
    "first_name",
    "last_name",
    "full_name",
    "body",
    "message",
    "from",
    "to",
}
_SAFE_KEYS = {"event", "timestamp", "level", "route", "method", "function"}
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PHONE_RE = re.compile(r"\+?\d[\d\s().-]{8,}\d")


def _scrub(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key in _PERSONAL_KEYS:
            event_dict[key] = "[redacted]"
        elif isinstance(event_dict[key], str) and key not in _SAFE_KEYS and not key.endswith("_id"):
            value = _EMAIL_RE.sub("[email]", event_dict[key])
            event_dict[key] = _PHONE_RE.sub("[phone]", value)
    return event_dict


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
