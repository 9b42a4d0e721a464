"""The consent ledger: every opt-in and opt-out per contact (or bare address) and channel, with its source.

The latest record wins. It is looked up by contact *or* by the address being written to, so a STOP from a
number nobody knew yet still binds when that number later becomes a renter's phone. The contact's
`sms_consent` / `email_consent` columns mirror the latest state for list views.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.enums import ConsentState
from shared.models import ConsentRecord, Contact

SOURCES = ("sms_keyword", "unsubscribe_link", "agent", "import")


async def record_consent(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    channel: str,
    state: str,
    source: str,
    contact_id: uuid.UUID | None = None,
    address: str | None = None,
    detail: str | None = None,
    actor_id: uuid.UUID | None = None,
    inbound_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> bool:
    """Append one record (idempotent per inbound id). Returns False when that inbound was recorded already."""
    at = at or clock.now()
    statement = (
        insert(ConsentRecord)
        .values(
            id=uuid.uuid4(),
            org_id=org_id,
            contact_id=contact_id,
            address=address,
            channel=channel,
            state=state,
            source=source,
            detail=detail,
            actor_id=actor_id,
            inbound_id=inbound_id,
            recorded_at=at,
            created_at=func.clock_timestamp(),  # tie-break of equal recorded_at: the order they were written
        )
        .on_conflict_do_nothing(index_elements=["org_id", "inbound_id"])
        .returning(ConsentRecord.id)
    )
    if (await session.execute(statement)).first() is None:
        return False
    if contact_id is not None:
        column = Contact.sms_consent if channel == "sms" else Contact.email_consent
        await session.execute(update(Contact).where(Contact.id == contact_id).values({column.key: state}))
    return True


async def latest_consent(
    session: AsyncSession, org_id: uuid.UUID, channel: str, *, contact_id: uuid.UUID | None, address: str | None
) -> str | None:
    """The state of the newest record for this contact or address on this channel, None when there is none."""
    conditions = []
    if contact_id is not None:
        conditions.append(ConsentRecord.contact_id == contact_id)
    if address:
        conditions.append(ConsentRecord.address == address)
    if not conditions:
        return None
    return await session.scalar(
        select(ConsentRecord.state)
        .where(ConsentRecord.org_id == org_id, ConsentRecord.channel == channel, or_(*conditions))
        .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.created_at.desc())
        .limit(1)
    )


async def is_opted_out(
    session: AsyncSession, org_id: uuid.UUID, channel: str, *, contact: Contact | None, address: str | None
) -> bool:
    state = await latest_consent(session, org_id, channel, contact_id=contact.id if contact else None, address=address)
    if state is None and contact is not None:
        state = contact.sms_consent if channel == "sms" else contact.email_consent
    return state == ConsentState.opted_out
