from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, IdMixin, OrgLedMixin, OrgMixin, TimestampMixin

# How a writer locks a contact row: FOR NO KEY UPDATE (`with_for_update(key_share=True)` on a select, this dict as
# `with_for_update=` of session.get), as a lead (shared/models/lead.py, LEAD_LOCK). Editing,
# merging, erasing or writing a digest never changes a contact's key, and the weaker lock lets the rows that point
# at the renter (identities, leads, events, consent records) be written meanwhile: their foreign-key checks take
# FOR KEY SHARE, which FOR UPDATE blocked. Only the import undo deletes contacts (its DELETE waits for these).
CONTACT_LOCK: dict[str, bool] = {"key_share": True}


class Contact(IdMixin, OrgMixin, TimestampMixin, Base):
    """One person per organization: a renter, or an owner prospect for property managers."""

    __tablename__ = "contacts"

    kind: Mapped[str] = mapped_column(String(16), default="tenant")
    full_name: Mapped[str | None] = mapped_column(String(300))
    first_name: Mapped[str | None] = mapped_column(String(150))
    last_name: Mapped[str | None] = mapped_column(String(150))
    primary_email: Mapped[str | None] = mapped_column(String(320))
    primary_phone: Mapped[str | None] = mapped_column(String(32))
    # consent per channel: unknown | opted_in | opted_out (an opt-out always wins on merge)
    sms_consent: Mapped[str] = mapped_column(String(16), default="unknown", server_default="unknown")
    email_consent: Mapped[str] = mapped_column(String(16), default="unknown", server_default="unknown")
    # set when merged away; the row stays so an undo can restore it exactly
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    # set when the renter's personal data was erased on request (DELETE /v1/contacts/{id}); the row stays
    erased_at: Mapped[datetime | None]
    # What free-text search matches (GET /v1/leads?q=): names and every identity, one per line, lowercase.
    # Written only by PostgreSQL triggers (migration 0003) so every write path keeps it right; never set it here.
    # Not indexed: searches read the leads' copy (migration r16), which the triggers keep from this column.
    search_text: Mapped[str] = mapped_column(Text, server_default=text("''"), deferred=True)


class ContactIdentity(IdMixin, OrgLedMixin, TimestampMixin, Base):
    """A normalized email or E.164 phone seen for a contact. Unique per organization: the dedup key."""

    __tablename__ = "contact_identities"
    __table_args__ = (
        UniqueConstraint("org_id", "kind", "value"),
        Index("ix_contact_identities_contact_id", "contact_id"),
        Index(
            "ix_contact_identities_value_prefix",
            "org_id",
            "value",
            postgresql_ops={"value": "text_pattern_ops"},
        ),
    )

    # deferrable (migration i15b): the CSV import inserts identities before their new contacts
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(320))
    source: Mapped[str | None] = mapped_column(String(64))
