"""The worker→API shared secret: from GUESTCARD_SERVICE_TOKEN, else generated once into the data folder."""

from __future__ import annotations

import secrets

from shared.config import Settings


def resolve_service_token(settings: Settings) -> str:
    if settings.service_token:
        return settings.service_token
    path = settings.data_dir / "service_token"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.write_text(token)
    path.chmod(0o600)
    return token
