"""A contact with every identity and lead, in three indexed queries."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api.contacts.schemas import ContactOut, IdentityOut
from services.api.leads.queries import lead_select, row_to_out
from shared.errors import Gone, NotFound
from shared.models import Contact, ContactIdentity, Lead


async def find_contact(
    session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID, *, for_update: bool = False
) -> Contact:
    """The contact, or 404 (none in this organization). Erased ones too: see `refuse_erased`."""
    query = select(Contact).where(Contact.id == contact_id, Contact.org_id == org_id)
    contact = await session.scalar(query.with_for_update(key_share=True) if for_update else query)
    if contact is None:
        raise NotFound("Contact not found.")
    return contact


def refuse_erased(contact: Contact) -> None:
    """410 for a contact erased on request: the person is gone, their leads stay.

    After `DELETE /v1/contacts/{id}` the row stays for the leads' sake, but the resource a client asked to
    delete must not answer 200 again: reads, edits and consent answer 410 with `erased_at`. Callers check the
    caller's scope first, so an agent outside it learns nothing more than a 404.
    """
    if contact.erased_at is not None:
        raise Gone(
            "This contact's personal data was erased on request; their leads remain.",
            erased_at=contact.erased_at.isoformat(),
        )


async def live_contact(session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID) -> Contact:
    """`find_contact`, then `refuse_erased` (for callers that checked the scope already)."""
    contact = await find_contact(session, org_id, contact_id)
    refuse_erased(contact)
    return contact


async def get_contact(
    session: AsyncSession,
    org_id: uuid.UUID,
    contact_id: uuid.UUID,
    *,
    scope: ColumnElement[bool] | None = None,
) -> ContactOut:
    """`scope` (owners' lead scope): only the leads the caller may see; none of them → 404."""
    contact = await find_contact(session, org_id, contact_id)
    leads_query = lead_select(org_id).where(Lead.contact_id == contact.id)
    if scope is not None:
        leads_query = leads_query.where(scope)
    lead_rows = (await session.execute(leads_query.order_by(Lead.created_at.desc(), Lead.id.desc()))).mappings().all()
    if scope is not None and not lead_rows:
        raise NotFound("Contact not found.")
    refuse_erased(contact)  # after the scope: outside it, an erased contact is a 404 like any other
    identities = await session.scalars(
        select(ContactIdentity)
        .where(ContactIdentity.contact_id == contact.id, ContactIdentity.org_id == org_id)
        .order_by(ContactIdentity.kind, ContactIdentity.created_at)
    )
    return ContactOut(
        id=contact.id,
        kind=contact.kind,
        full_name=contact.full_name,
        first_name=contact.first_name,
        last_name=contact.last_name,
        email=contact.primary_email,
        phone=contact.primary_phone,
        sms_consent=contact.sms_consent,
        email_consent=contact.email_consent,
        merged_into_id=contact.merged_into_id,
        created_at=contact.created_at,
        updated_at=contact.updated_at,
        identities=[IdentityOut.model_validate(identity) for identity in identities],
        leads=[row_to_out(row) for row in lead_rows],
    )
