"""Who owns which identity, and which pairs of contacts a person chose to keep apart."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import IdentityKind
from shared.identity import IdentityKeys
from shared.models import ContactIdentity, ContactPairDecision


async def find_contact_ids(session: AsyncSession, org_id: uuid.UUID, keys: IdentityKeys) -> dict[uuid.UUID, list[str]]:
    """Contacts owning any of the keys, with the kinds each matched on (sorted)."""
    if not keys.usable:
        return {}
    conditions = [and_(ContactIdentity.kind == kind, ContactIdentity.value == value) for kind, value in keys.usable]
    rows = await session.execute(
        select(ContactIdentity.kind, ContactIdentity.contact_id).where(
            ContactIdentity.org_id == org_id, or_(*conditions)
        )
    )
    found: dict[uuid.UUID, list[str]] = {}
    for kind, contact_id in rows:
        found.setdefault(contact_id, []).append(kind)
    for kinds in found.values():
        kinds.sort()
    return found


OWNERS_OF_MANY_SQL = text(
    "SELECT i.org_id, i.kind, i.value, i.contact_id FROM contact_identities AS i"
    " JOIN unnest(CAST(:orgs AS uuid[]), CAST(:kinds AS text[]), CAST(:values AS text[])) AS k(org_id, kind, value)"
    " ON i.org_id = k.org_id AND i.kind = k.kind AND i.value = k.value"
)

Owners = dict[tuple[uuid.UUID, str, str], uuid.UUID]


async def find_owners_of_many(session: AsyncSession, keys: set[tuple[uuid.UUID, str, str]]) -> Owners:
    """Who owns each (organization, kind, value): one read for a whole intake batch instead of one per row."""
    if not keys:
        return {}
    ordered = sorted(keys)
    rows = await session.execute(
        OWNERS_OF_MANY_SQL,
        {"orgs": [k[0] for k in ordered], "kinds": [k[1] for k in ordered], "values": [k[2] for k in ordered]},
    )
    return {(row.org_id, row.kind, row.value): row.contact_id for row in rows}


def contact_ids_from(owners: Owners, org_id: uuid.UUID, keys: IdentityKeys) -> dict[uuid.UUID, list[str]]:
    """`find_contact_ids`'s answer, from owners read beforehand."""
    found: dict[uuid.UUID, list[str]] = {}
    for kind, value in keys.usable:
        contact_id = owners.get((org_id, kind, value))
        if contact_id is not None:
            found.setdefault(contact_id, []).append(kind)
    for kinds in found.values():
        kinds.sort()
    return found


def prefer_email_owner(owners: dict[uuid.UUID, list[str]]) -> uuid.UUID | None:
    """Phones are shared (family lines, office lines) more often than emails: the email owner wins a conflict."""
    if not owners:
        return None
    return max(owners, key=lambda cid: (IdentityKind.email in owners[cid], len(owners[cid])))


def ordered_pair(first: uuid.UUID, second: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    low, high = sorted((first, second))
    return low, high


async def kept_apart(session: AsyncSession, org_id: uuid.UUID, first: uuid.UUID, second: uuid.UUID) -> bool:
    low, high = ordered_pair(first, second)
    found = await session.scalar(
        select(ContactPairDecision.id).where(
            ContactPairDecision.org_id == org_id,
            ContactPairDecision.contact_low_id == low,
            ContactPairDecision.contact_high_id == high,
        )
    )
    return found is not None
