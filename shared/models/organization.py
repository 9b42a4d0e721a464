from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, String, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, TimestampMixin


class Organization(IdMixin, TimestampMixin, Base):
    """A tenant: an operator, a landlord or a property manager."""

    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    # sha256 of the intake key: the key is a URL secret, looked up on every webhook
    intake_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    default_country: Mapped[str] = mapped_column(String(2), default="US")
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    # owners: agents see every lead (not only their own, collaborated and pool); agents may change owners
    agents_see_all: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    agents_can_reassign: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # a new number whenever the organization's configuration changes (migration q22c's triggers set it, nothing
    # else writes it): the API keeps configuration it read across intake batches while it stays the same
    config_version: Mapped[int] = mapped_column(
        BigInteger, server_default=text("nextval('org_config_versions'::regclass)"), deferred=True
    )
