"""An organization's own status names, each mapped to one canonical status."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.status_labels.schemas import StatusLabelCreate
from shared.errors import Conflict
from shared.models import StatusLabel


async def list_labels(session: AsyncSession, org_id: uuid.UUID) -> list[StatusLabel]:
    query = select(StatusLabel).where(StatusLabel.org_id == org_id).order_by(StatusLabel.label, StatusLabel.id)
    return list((await session.scalars(query.limit(1000))).all())


async def create_label(session: AsyncSession, org_id: uuid.UUID, body: StatusLabelCreate) -> StatusLabel:
    label = body.label.strip()
    inserted = await session.scalar(
        insert(StatusLabel)
        .values(id=uuid.uuid4(), org_id=org_id, label=label, canonical_status=body.canonical_status)
        .on_conflict_do_nothing(index_elements=["org_id", "label"])
        .returning(StatusLabel.id)
    )
    if inserted is None:
        raise Conflict("A status label with this name already exists.")
    row = await session.scalar(select(StatusLabel).where(StatusLabel.id == inserted))
    assert row is not None
    return row
