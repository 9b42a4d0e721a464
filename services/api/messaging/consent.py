"""The consent ledger: every opt-in and opt-out per contact (or bare address) and channel, with its source.

The latest record wins. It is looked up by contact *or* by the address being written to, so a STOP from a
number nobody knew yet still binds when that number later becomes a renter's phone. The contact's
`sms_consent` / `email_consent` columns mirror the latest state for list views.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from shared import clock
from shared.enums import ConsentState
from shared.models import ConsentRecord, Contact

SOURCES = ("sms_keyword", "unsubscribe_link", "agent", "import")
CHANNELS = ("sms", "email")

# Inside an intake batch (services/api/txmemo.py): the (org, channel, "address" | "contact", value) that are
# known to have no record. Read once for the batch's addresses; a contact the batch creates has none; any
# record written in the batch removes what it touches. Absent from the slot: read the ledger.
NO_RECORD_KEY = "consent.no_record"
NO_RECORDS_SQL = text(
    "SELECT DISTINCT r.org_id, r.channel, r.address FROM consent_records AS r"
    " JOIN unnest(CAST(:orgs AS uuid[]), CAST(:addresses AS text[])) AS a(org_id, address)"
    " ON r.org_id = a.org_id AND r.address = a.address"
)


async def prefetch_no_records(session: AsyncSession, addresses: set[tuple[uuid.UUID, str]]) -> None:
    """One read for a batch's (organization, address) pairs: those with no record on a channel are noted."""
    known = txmemo.slot(session, NO_RECORD_KEY)
    if known is None or not addresses:
        return
    ordered = sorted(addresses)
    rows = await session.execute(
        NO_RECORDS_SQL, {"orgs": [org for org, _ in ordered], "addresses": [address for _, address in ordered]}
    )
    recorded = {(row.org_id, row.channel, row.address) for row in rows}
    for org_id, address in ordered:
        for channel in CHANNELS:
            if (org_id, channel, address) not in recorded:
                known[(org_id, channel, "address", address)] = True


def note_new_contact(session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID) -> None:
    """A contact this transaction just created has no record yet (under its id) on any channel."""
    known = txmemo.slot(session, NO_RECORD_KEY)
    if known is not None:
        for channel in CHANNELS:
            known[(org_id, channel, "contact", contact_id)] = True


def _known_empty(
    session: AsyncSession, org_id: uuid.UUID, channel: str, contact_id: uuid.UUID | None, address: str | None
) -> bool:
    known = txmemo.slot(session, NO_RECORD_KEY)
    if not known:
        return False
    return (contact_id is None or (org_id, channel, "contact", contact_id) in known) and (
        not address or (org_id, channel, "address", address) in known
    )


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
    if contact_id is not None:
        await txmemo.write_pending_contacts(session)  # the record points at the renter
    known = txmemo.slot(session, NO_RECORD_KEY)
    if known is not None:  # what this record touches is no longer known to have none
        known.pop((org_id, channel, "contact", contact_id), None)
        known.pop((org_id, channel, "address", address), None)
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
    if (contact_id is None and not address) or _known_empty(session, org_id, channel, contact_id, address):
        return None  # before any SQL is built: a batch's new renters have no records, known without asking
    conditions = []
    if contact_id is not None:
        conditions.append(ConsentRecord.contact_id == contact_id)
    if address:
        conditions.append(ConsentRecord.address == address)
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
