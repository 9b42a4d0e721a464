from __future__ import annotations

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgMixin, TimestampMixin


class Property(IdMixin, OrgMixin, TimestampMixin, Base):
    """A community or rental the organization leases; intake resolves hints to it."""

    __tablename__ = "properties"
    __table_args__ = (
        Index("ix_properties_phone_numbers", "phone_numbers", postgresql_using="gin"),
        Index("ix_properties_listing_ids", "listing_ids", postgresql_using="gin"),
        Index("ix_properties_org_id_inbound_alias", "org_id", "inbound_alias"),
    )

    name: Mapped[str] = mapped_column(String(200))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(50))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2), default="US")
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    phone_numbers: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    listing_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    inbound_alias: Mapped[str | None] = mapped_column(String(320))
    application_url: Mapped[str | None] = mapped_column(String(2000))  # {{application_link}}; else the org's
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
