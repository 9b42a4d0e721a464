"""Which leads a caller's metrics may count: the ONE place every metrics query filters leads by principal.

`lead_scope(principal)` returns a SQL condition over the leads alias `l` (with its bind parameters), or None
when the caller may see every lead of its organization. Organization-wide callers are answered from the
rollups; a restricted caller (an agent seeing only their own, collaborated and pool leads) is answered by the
same queries run over raw rows with this condition added, so the numbers agree with what they can open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.util import ClauseAdapter

from services.api.auth.service import Principal
from services.api.owners import scope as owners_scope
from shared.models import Lead


@dataclass(frozen=True)
class LeadScope:
    sql: str | None = None  # a condition over `l` (leads), e.g. "(l.owner_id = :scope_user OR l.owner_id IS NULL)"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def restricted(self) -> bool:
        return self.sql is not None

    def where(self) -> str:
        return f" AND ({self.sql})" if self.sql else ""


async def lead_scope(session: AsyncSession, principal: Principal) -> LeadScope:
    """The owners' scope rule (services.api.owners.scope), rendered over the alias `l` of the raw queries.

    Rendering the one rule (instead of writing it again in SQL text) keeps lists, exports and metrics in
    step; the values are ids and booleans of the caller, rendered as literals.
    """
    condition = await owners_scope.lead_scope(session, principal)
    if condition is None:
        return LeadScope()
    adapted = ClauseAdapter(Lead.__table__.alias("l")).traverse(condition)
    return LeadScope(sql=str(adapted.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})))
