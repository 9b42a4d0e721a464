"""Values that must never identify a renter in one organization.

The organization's own phone numbers and inbound addresses (a forwarded lead carries them), plus configured
entries: placeholders staff type (none@none.com, 000-000-0000), shared office lines, whole email domains.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# One definition of the rule, as SQL, so the intake hot path can embed it in a larger statement as is.
BLOCKED_IDENTITIES_SQL = """
    SELECT b.kind, b.value FROM blocklist_entries AS b WHERE b.org_id = :org_id
    UNION ALL
    SELECT 'phone', unnest(p.phone_numbers) FROM properties AS p WHERE p.org_id = :org_id
    UNION ALL
    SELECT 'email', lower(p.inbound_alias) FROM properties AS p
    WHERE p.org_id = :org_id AND p.inbound_alias IS NOT NULL
"""
_BLOCKED = text(BLOCKED_IDENTITIES_SQL)


async def blocked_identities(session: AsyncSession, org_id: uuid.UUID) -> frozenset[tuple[str, str]]:
    """(kind, value) pairs, kind ∈ email | phone | email_domain; one round trip."""
    rows = await session.execute(_BLOCKED, {"org_id": org_id})
    return frozenset((str(kind), str(value)) for kind, value in rows)
