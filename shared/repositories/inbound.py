"""Read models over the intake inbox that other parts count on (metrics)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import InboundStatus
from shared.models import InboundMessage
from shared.normalize.caller_id import ANONYMOUS_CALLER_REASON


async def anonymous_missed_calls(
    session: AsyncSession, org_id: uuid.UUID, received_from: datetime, received_to: datetime
) -> dict[uuid.UUID | None, int]:
    """Missed calls from withheld / anonymous numbers per property (None: the number rang no known property).

    They make no contact and no lead, so the inbox is the only place they are counted.
    """
    rows = await session.execute(
        select(InboundMessage.property_id, func.count())
        .where(
            InboundMessage.org_id == org_id,
            InboundMessage.status == InboundStatus.ignored.value,
            InboundMessage.reason == ANONYMOUS_CALLER_REASON,
            InboundMessage.received_at >= received_from,
            InboundMessage.received_at < received_to,
        )
        .group_by(InboundMessage.property_id)
    )
    return {property_id: count for property_id, count in rows}
