"""Values that must never identify a renter in one organization.

The organization's own phone numbers and inbound addresses (a forwarded lead carries them), plus configured
entries: placeholders staff type (none@none.com, 000-000-0000), shared office lines, whole email domains.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import CompoundSelect, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import BlocklistEntry, Property


def blocked_identities_query(org_id: uuid.UUID) -> CompoundSelect[Any]:
    """(kind, value) rows: configured entries, the org's own phone numbers and inbound aliases."""
    entries = select(BlocklistEntry.kind, BlocklistEntry.value).where(BlocklistEntry.org_id == org_id)
    phones = select(literal("phone"), func.unnest(Property.phone_numbers)).where(Property.org_id == org_id)
    aliases = select(literal("email"), func.lower(Property.inbound_alias)).where(
        Property.org_id == org_id, Property.inbound_alias.is_not(None)
    )
    return union_all(entries, phones, aliases)


async def blocked_identities(session: AsyncSession, org_id: uuid.UUID) -> frozenset[tuple[str, str]]:
    """(kind, value) pairs, kind ∈ email | phone | email_domain; one round trip."""
    rows = await session.execute(blocked_identities_query(org_id))
    return frozenset((str(kind), str(value)) for kind, value in rows)
