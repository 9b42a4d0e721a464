"""Compatibility layer over the automation engine (services/api/automation), and the owner seam.

The rules themselves are data now (services/api/automation/defaults.py, overridable per organization and
property). `assign_owner_if_missing` stays here by name: the engine calls it whenever a lead needs an owner
before its next action is set.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from services.api.automation.conditions import ContactInfo

from shared import clock
from shared.enums import LeadStatus, Role
from shared.models import Lead, User


async def apply_rules(
    session: AsyncSession,
    lead: Lead,
    trigger: str,
    now: datetime,
    *,
    sms_consent: str | None = None,
    agents: list[uuid.UUID] | None = None,
    new_lead: bool = False,
    entered_status: bool = False,
    data: dict[str, Any] | None = None,
    contact: ContactInfo | None = None,
    touch_text: str | None = None,
    new_contact: bool = False,
) -> None:
    """Re-evaluate the lead's next step for what just happened (the automation engine decides).

    `trigger` is a LeadStatus (a status entered) or an event type; `entered_status` says an event also moved
    the status. `agents` (active agent ids, ordered) and `new_lead` let the intake hot path skip lookups.
    """
    from services.api.automation.evaluate import evaluate  # the engine imports this module's owner seam

    if isinstance(trigger, LeadStatus):
        await evaluate(session, lead, now, status=trigger, data=data, sms_consent=sms_consent, agents=agents)
        return
    status = LeadStatus(lead.status) if entered_status else None
    await evaluate(
        session,
        lead,
        now,
        event=str(trigger),
        status=status,
        data=data,
        sms_consent=sms_consent,
        agents=agents,
        new_lead=new_lead,
        contact=contact,
        touch_text=touch_text,
        new_contact=new_contact,
    )


def active_agents_query(org_id: uuid.UUID) -> Select[Any]:
    return (
        select(User.id)
        .where(User.org_id == org_id, User.is_active.is_(True), User.role == Role.agent)
        .order_by(User.id)
    )


async def assign_owner_if_missing(
    session: AsyncSession,
    lead: Lead,
    agents: list[uuid.UUID] | None = None,
    *,
    now: datetime | None = None,
    agent_hint: str | None = None,
) -> None:
    """A thin delegate to owners' one entry point (`agents` is ignored: the property's strategy decides)."""
    from services.api.owners.assignment import ensure_owner

    await ensure_owner(session, lead, now=now or clock.now(), agent_hint=agent_hint)
