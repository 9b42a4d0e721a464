"""Contact and lead resolution, race-safe by database constraints rather than by luck.

Identities are unique per organization; every writer inserts them in one sorted order with
ON CONFLICT DO NOTHING, so two transactions for the same renter queue on the same key instead of
deadlocking, and the loser learns who won. (An intake batch writes its new renters with its flush, without
ON CONFLICT: it holds every key's lock and found each key free, so a conflict there can only come from a writer
that skipped the locks, and fails the batch's savepoint; the batch is then applied signal by signal, here.)
Open leads are unique per contact and property by a partial index; opening one uses the same pattern.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, event, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.api import txmemo
from shared import clock
from shared.enums import LeadStatus
from shared.errors import DuplicateContact
from shared.identity import IdentityKeys
from shared.models import Contact, ContactIdentity, Lead
from shared.models.lead import NO_PROPERTY, OPEN_STATUSES_SQL
from shared.repositories import driver
from shared.repositories.driver import DriverStatement
from shared.repositories.identities import find_contact_ids
from shared.repositories.rows import attach, full_row

REOPEN_LOST_WITHIN = timedelta(days=180)


async def lock_identity_keys(session: AsyncSession, org_id: uuid.UUID, keys: IdentityKeys) -> None:
    """Serialize concurrent writers for the same renter, before they read who owns what.

    Transaction-scoped advisory locks on every identity key, taken in one sorted order (no deadlock): a
    phone-only missed call racing an ILS email that adds that phone waits, then sees the phone's owner.
    A hash collision only makes two unrelated renters wait for each other briefly.
    """
    if not keys.usable:
        return
    names = sorted(f"{org_id}:{kind}:{value}" for kind, value in set(keys.usable))
    if txmemo.holds_locks(session, 42, names):  # an intake batch took them all, in this order, up front
        return
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 42)) "
            "FROM (SELECT unnest(CAST(:names AS text[])) AS k ORDER BY 1) AS ordered"
        ),
        {"names": names},
    )
    txmemo.note_locks(session, 42, names)


async def claim_identities(
    session: AsyncSession,
    org_id: uuid.UUID,
    contact_id: uuid.UUID,
    identities: list[tuple[str, str]],
    source: str | None = None,
) -> set[tuple[str, str]]:
    """Attach identities to a contact; returns those it now holds that no one else held."""
    if not identities:
        return set()
    ordered = sorted(set(identities))
    statement = (
        insert(ContactIdentity)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "org_id": org_id,
                    "contact_id": contact_id,
                    "kind": kind,
                    "value": value,
                    "source": source,
                }
                for kind, value in ordered
            ]
        )
        .on_conflict_do_nothing(index_elements=["org_id", "kind", "value"])
        .returning(ContactIdentity.kind, ContactIdentity.value)
    )
    return {(row.kind, row.value) for row in await session.execute(statement)}


INSERT_CONTACT_SQL = text(
    """
    WITH new_contact AS (
        INSERT INTO contacts (id, org_id, kind, full_name, first_name, last_name, primary_email, primary_phone,
                              sms_consent, email_consent, created_at, updated_at)
        VALUES (:id, :org_id, :kind, :full_name, :first_name, :last_name, :primary_email, :primary_phone,
                :sms_consent, 'unknown', :now, :now)
        RETURNING id
    )
    INSERT INTO contact_identities (id, org_id, contact_id, kind, value, source, created_at, updated_at)
    SELECT gen_random_uuid(), :org_id, new_contact.id, key.kind, key.value, :source, :now, :now
    FROM new_contact, unnest(CAST(:kinds AS text[]), CAST(:values AS text[])) AS key(kind, value)
    ON CONFLICT (org_id, kind, value) DO NOTHING
    RETURNING kind, value
    """
)


INSERT_CONTACT = DriverStatement.of(INSERT_CONTACT_SQL)  # once per new renter: straight to asyncpg
_SQL_FILLS = frozenset({"email_consent", "created_at", "updated_at"})  # INSERT_CONTACT_SQL writes these itself


_CONTACTS = cast(Table, Contact.__table__)
_IDENTITIES = cast(Table, ContactIdentity.__table__)


@event.listens_for(Session, "before_flush")
def _write_pending_contacts(session: Session, flush_context: Any, instances: Any) -> None:
    """The batch's new renters, before the flush writes everything that points at them: their identities first,
    then the contacts, one INSERT each. The identities' reference to their contact is checked at commit in a
    batch (`txmemo.defer_lead_references` defers every deferrable key), so each contact is written once, its
    search text computed on INSERT from identities already there; written after its identities' INSERT, the
    identities' trigger rewrote every new contact to add them (a second row version per renter)."""
    pending = txmemo.slot_of(session.info, txmemo.PENDING_CONTACTS)
    if pending:
        connection = session.connection()
        identities = [identity for _, rows in pending.values() for identity in rows]
        if identities:
            driver.insert_rows_in_flush(connection, _IDENTITIES, identities)
        driver.insert_rows_in_flush(connection, _CONTACTS, [contact for contact, _ in pending.values()])
        pending.clear()


async def insert_contact(
    session: AsyncSession,
    org_id: uuid.UUID,
    contact_id: uuid.UUID,
    identities: list[tuple[str, str]],
    *,
    kind: str = "tenant",
    full_name: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    sms_consent: str = "unknown",
    source: str | None = None,
) -> set[tuple[str, str]]:
    """The one way a contact is created: the contact and its identities in one statement (identities in
    sorted order, ON CONFLICT DO NOTHING). Returns the identities it now holds; one missing from the result
    is held by someone else (callers decide: refuse, or keep the contact and open a review).

    Inside an intake batch's single savepoint the rows wait for the batch's flush instead (one INSERT of contacts,
    one of identities, for all its new renters): see below, and `txmemo.write_pending_contacts` for the reads
    and rows that need them written first."""
    ordered = sorted(set(identities))
    now = clock.now()
    contact_row = {
        "id": contact_id,
        "org_id": org_id,
        "kind": kind,
        "full_name": full_name,
        "first_name": first_name,
        "last_name": last_name,
        "primary_email": email,
        "primary_phone": phone,
        "sms_consent": sms_consent,
        "email_consent": "unknown",
        "created_at": now,
        "updated_at": now,
    }
    pending = txmemo.slot(session, txmemo.PENDING_CONTACTS)
    if pending is not None and txmemo.pending_keyed(session) is not None and txmemo.lead_references_deferred(session):
        # an intake batch's single savepoint: written with the batch's next flush, one INSERT of identities and one
        # of contacts for all its new renters (`_write_pending_contacts`). The caller found none of these keys
        # owned, under the locks every writer of an identity takes; one written meanwhile by a writer that did not
        # would fail the flush, and the batch is applied again one signal at a time, through the statement below.
        new_identities = [
            full_row(ContactIdentity, {
                "id": uuid.uuid4(), "org_id": org_id, "contact_id": contact_id, "kind": key_kind, "value": value,
                "source": source, "created_at": now, "updated_at": now,
            })
            for key_kind, value in ordered
        ]  # fmt: skip
        row = full_row(Contact, contact_row)
        pending[contact_id] = (row, new_identities)
        attach(session, Contact, row)
        return set(ordered)
    rows = await driver.fetch(
        session,
        INSERT_CONTACT,
        {
            **{key: value for key, value in contact_row.items() if key not in _SQL_FILLS},
            "now": now,
            "source": source,
            "kinds": [key_kind for key_kind, _ in ordered],
            "values": [value for _, value in ordered],
        },
    )
    # the renter just written, as a persistent object: whoever reads it next in this transaction (the
    # messaging context, the lead's detail) finds it in the identity map instead of selecting it back
    attach(session, Contact, full_row(Contact, contact_row))
    return {(row.kind, row.value) for row in rows}


async def create_contact(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    kind: str = "tenant",
    full_name: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    source: str | None = None,
    identities: list[tuple[str, str]] | None = None,
) -> Contact:
    """Create a contact holding every given identity, or raise DuplicateContact naming who holds one."""
    wanted = (
        identities
        if identities is not None
        else [(kind_, value) for kind_, value in (("email", email), ("phone", phone)) if value]
    )
    savepoint = await session.begin_nested()
    contact_id = uuid.uuid4()
    claimed = await insert_contact(
        session,
        org_id,
        contact_id,
        wanted,
        kind=kind,
        full_name=full_name,
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        source=source,
    )
    if claimed == set(wanted):
        await savepoint.commit()
        contact = await session.get(Contact, contact_id)
        assert contact is not None
        return contact
    await savepoint.rollback()
    owners = await find_contact_ids(session, org_id, IdentityKeys(usable=sorted(set(wanted) - claimed)))
    existing = next(iter(owners), None)
    raise DuplicateContact(
        "A contact with this email or phone already exists.",
        existing_contact_id=str(existing) if existing else None,
        contact_ids=[str(owner) for owner in owners],
    )


def is_open_lead() -> ColumnElement[bool]:
    """The open-lead predicate (the partial unique index's `OPEN_STATUSES_SQL`, as an expression)."""
    return Lead.status.notin_([LeadStatus.lost, LeadStatus.leased])


def _open_lead_key() -> list[Any]:
    return ["org_id", "contact_id", text(f"COALESCE(property_id, '{NO_PROPERTY}'::uuid)")]


async def find_open_lead(
    session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID, property_id: uuid.UUID | None, lock: bool = False
) -> Lead | None:
    query = select(Lead).where(
        Lead.org_id == org_id,
        Lead.contact_id == contact_id,
        Lead.property_id.is_(None) if property_id is None else Lead.property_id == property_id,
        is_open_lead(),
    )
    if lock:
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE: see find_lead_to_touch
    return await session.scalar(query)


async def open_lead_for(
    session: AsyncSession,
    org_id: uuid.UUID,
    contact_id: uuid.UUID,
    property_id: uuid.UUID | None,
    defaults: dict[str, Any],
) -> tuple[Lead, bool]:
    """The open lead of this contact for this property, created if there is none. (lead, created)."""
    existing = await find_open_lead(session, org_id, contact_id, property_id, lock=True)
    if existing is not None:
        return existing, False
    now = clock.now()
    values = {
        "id": uuid.uuid4(),
        "org_id": org_id,
        "contact_id": contact_id,
        "property_id": property_id,
        "status": LeadStatus.new,
        "temperature": "hot",
        "created_at": now,
        "updated_at": now,
        "version": 1,
        **defaults,
    }
    statement = (
        insert(Lead)
        .values(**values)
        .on_conflict_do_nothing(index_elements=_open_lead_key(), index_where=text(OPEN_STATUSES_SQL))
        .returning(Lead.id)
    )
    inserted = await session.scalar(statement)
    lead = await find_open_lead(session, org_id, contact_id, property_id, lock=True)
    assert lead is not None, "an open lead must exist after insert-or-nothing"
    return lead, inserted is not None


async def find_lead_to_touch(
    session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID, property_id: uuid.UUID | None, now: datetime
) -> Lead | None:
    """The contact's open lead for this property, else one lost within `REOPEN_LOST_WITHIN`; locked.

    FOR NO KEY UPDATE, not FOR UPDATE: a lead's key never changes here, and the weaker lock does not block
    the KEY SHARE that a foreign key check takes (the worker's batched finish sets `inbound_messages.lead_id`
    for many rows in one transaction; with FOR UPDATE the two could wait on each other's leads).
    """
    same_property = Lead.property_id.is_(None) if property_id is None else Lead.property_id == property_id
    is_open = is_open_lead()
    recently_lost = (Lead.status == LeadStatus.lost) & (Lead.closed_at >= now - REOPEN_LOST_WITHIN)
    found: Lead | None = await session.scalar(
        select(Lead)
        .where(Lead.org_id == org_id, Lead.contact_id == contact_id, same_property)
        .where(is_open | recently_lost)
        .order_by(is_open.desc(), Lead.closed_at.desc().nulls_last())
        .limit(1)
        .with_for_update(key_share=True)
    )
    return found
