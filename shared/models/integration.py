from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.crypto import EncryptedText
from shared.models.base import Base, TimestampMixin


class Integration(TimestampMixin, Base):
    """A provider's signing secret for one organization. Write-only through the API, encrypted at rest."""

    __tablename__ = "integrations"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    signing_secret: Mapped[str] = mapped_column(EncryptedText)  # ciphertext at rest (shared.crypto)
