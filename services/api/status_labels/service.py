"""An organization's own status names, each mapped to one canonical status."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.automation.schemas import ActionPlan
from services.api.status_labels.schemas import ActionPlanOut, StatusLabelCreate
from shared.errors import Conflict, NotFound
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


async def get_action_plan(session: AsyncSession, org_id: uuid.UUID, label_id: uuid.UUID) -> ActionPlanOut:
    from services.api.automation import rules

    found = await session.scalar(select(StatusLabel.id).where(StatusLabel.id == label_id, StatusLabel.org_id == org_id))
    if found is None:
        raise NotFound("Status label not found.")
    saved = await rules.versions(session, org_id, rules.label_scope(label_id))
    if not saved:
        return ActionPlanOut(label_id=label_id, version=0, rule=None, versions=[])
    document = saved[0].document
    rule = document["rules"][0] if document.get("rules") else None
    return ActionPlanOut(label_id=label_id, version=saved[0].version, rule=rule, versions=[r.version for r in saved])


async def put_action_plan(
    session: AsyncSession, principal: Principal, label_id: uuid.UUID, plan: ActionPlan
) -> ActionPlanOut:
    from services.api.automation import rules

    await rules.save_label_plan(session, principal.org_id, label_id, plan, principal.user_id)
    return await get_action_plan(session, principal.org_id, label_id)
