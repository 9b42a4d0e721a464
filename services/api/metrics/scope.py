"""Which leads a caller's metrics may count: the ONE place every metrics query filters leads by principal.

`lead_scope(principal)` returns a SQL condition over the leads alias `l` (with its bind parameters), or None
when the caller may see every lead of its organization. Organization-wide callers are answered from the
rollups; a restricted caller (an agent seeing only their own, collaborated and pool leads) is answered by the
same queries run over raw rows with this condition added, so the numbers agree with what they can open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.api.auth.service import Principal


@dataclass(frozen=True)
class LeadScope:
    sql: str | None = None  # a condition over `l` (leads), e.g. "(l.owner_id = :scope_user OR l.owner_id IS NULL)"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def restricted(self) -> bool:
        return self.sql is not None

    def where(self) -> str:
        return f" AND ({self.sql})" if self.sql else ""


def lead_scope(principal: Principal) -> LeadScope:
    """Every role sees the whole organization today; the agent scope (owners) plugs in here, once."""
    return LeadScope()
