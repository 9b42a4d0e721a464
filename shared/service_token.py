"""Process secrets: the worker→API service token and the link-signing key, from settings or generated once."""

from __future__ import annotations

import secrets

from shared.config import Settings


def resolve_service_token(settings: Settings) -> str:
    return settings.service_token or _generated(settings, "service_token")


def resolve_secret_key(settings: Settings) -> str:
    """The key of shared.signing: from GUESTCARD_SECRET_KEY, else generated once into the data folder."""
    return settings.secret_key or _generated(settings, "secret_key")


def _generated(settings: Settings, name: str) -> str:
    path = settings.data_dir / name
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.write_text(token)
    path.chmod(0o600)
    return token
