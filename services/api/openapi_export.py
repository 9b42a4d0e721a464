"""openapi.yaml is the contract: rendered deterministically from the app."""

from __future__ import annotations

import yaml

from services.api.app import create_app
from shared.config import Settings


def render_openapi() -> str:
    schema = create_app(
        Settings(database_url="postgresql+asyncpg://unused/unused", redis_url="redis://unused")
    ).openapi()
    return yaml.safe_dump(schema, sort_keys=False, allow_unicode=True, width=120)
