"""Who is this renter? Exact match on canonical email and E.164 phone within the organization.

A verdict always carries reasons a person can read. Conflicts (email → A, phone → B) go to review rather
than to a guess. Placeholders, relays and the organization's own numbers never count as identity.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import MatchVerdict
from shared.identity import IdentityKeys, identity_keys
from shared.matching import decide, kept_apart_pair, name_needed_for
from shared.models import Contact
from shared.repositories.identities import Owners, contact_ids_from, find_contact_ids, kept_apart
from shared.schemas.signal import LeadSignal, MatchResult


async def match_signal(
    session: AsyncSession,
    org_id: uuid.UUID,
    signal: LeadSignal,
    blocked: frozenset[tuple[str, str]] = frozenset(),
    owners: Owners | None = None,
    keys: IdentityKeys | None = None,
) -> MatchResult:
    """`owners`: the batch's identity owners read beforehand (`find_owners_of_many`); None reads them here.
    `keys`: the signal's identity keys when the caller already derived them."""
    if keys is None:
        keys = identity_keys(signal.contact, blocked)
    if not keys.usable:
        return MatchResult(verdict=MatchVerdict.new, reasons=[*keys.notes, "no usable email or phone to match on"])
    by_contact = contact_ids_from(owners, org_id, keys) if owners is not None else None
    return await match_keys(session, org_id, keys, signal.contact.first_name, signal.contact.last_name, by_contact)


async def match_keys(
    session: AsyncSession,
    org_id: uuid.UUID,
    keys: IdentityKeys,
    first_name: str | None = None,
    last_name: str | None = None,
    by_contact: dict[uuid.UUID, list[str]] | None = None,
) -> MatchResult:
    """Read what the verdict needs, then decide with the shared rule (shared/matching.py)."""
    if by_contact is None:
        by_contact = await find_contact_ids(session, org_id, keys)
    pair = kept_apart_pair(by_contact)
    apart = pair is not None and await kept_apart(session, org_id, *pair)
    known_name = None
    needs_name = name_needed_for(by_contact, first_name)
    if needs_name is not None:
        row = (
            await session.execute(select(Contact.first_name, Contact.last_name).where(Contact.id == needs_name))
        ).first()
        known_name = (row.first_name, row.last_name) if row is not None else None
    return decide(keys, by_contact, kept_apart=apart, known_name=known_name, first_name=first_name, last_name=last_name)
