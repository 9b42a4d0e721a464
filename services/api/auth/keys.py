"""Secrets shown once: API keys, intake keys, service tokens. Only their sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "gck_"
INTAKE_KEY_PREFIX = "gci_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def display_prefix(value: str) -> str:
    return value[:12]
