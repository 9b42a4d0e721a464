"""Reading and editing leads. Every change bumps `version` and lands on the timeline through `add_event`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.api.auth.service import Principal
from services.api.leads import rules
from services.api.leads import status as lead_status
from services.api.leads.events import add_event, add_status_event
from services.api.leads.queries import (
    LeadFilters,
    lead_select,
    list_statement,
    next_cursor_for,
    phone_contact_ids,
    row_to_out,
)
from services.api.leads.refs import ensure_property, ensure_status_label, ensure_user
from services.api.leads.schemas import LeadOut, LeadUpdate, StatusChange
from services.api.owners.assignment import cancel_pending_offers
from shared import clock
from shared.enums import EventType, LeadStatus, Role
from shared.errors import Conflict, Forbidden, NotFound
from shared.models import Contact, Lead, Organization

_CONTACT_FIELDS = ("first_name", "last_name")
_OWN_EVENT_FIELDS = {"owner_id", "temperature", "property_id"}


async def get_lead_row(
    session: AsyncSession, org_id: uuid.UUID, lead_id: uuid.UUID, *, scope: ColumnElement[bool] | None = None
) -> RowMapping:
    query = lead_select(org_id).where(Lead.id == lead_id)
    if scope is not None:
        query = query.where(scope)
    row = (await session.execute(query)).mappings().first()
    if row is None:
        raise NotFound("Lead not found.")
    return row


async def get_lead_out(session: AsyncSession, org_id: uuid.UUID, lead_id: uuid.UUID) -> LeadOut:
    return row_to_out(await get_lead_row(session, org_id, lead_id))


async def list_lead_rows(
    session: AsyncSession,
    org_id: uuid.UUID,
    filters: LeadFilters,
    limit: int,
    cursor: str | None,
    *,
    scope: ColumnElement[bool] | Sequence[ColumnElement[bool]] | None = None,
) -> tuple[Sequence[RowMapping], str | None]:
    """A page of the list as rows (the router writes them as JSON without models) and the next cursor."""
    if filters.q and filters.contact_ids is None:
        contact_ids = await phone_contact_ids(session, org_id, filters.q)
        if contact_ids is not None:
            filters = replace(filters, contact_ids=contact_ids)
    query = list_statement(org_id, filters, limit, cursor, scope)
    rows = (await session.execute(query)).mappings().all()
    next_cursor = next_cursor_for(rows[limit - 1], filters.sort) if len(rows) > limit else None
    return rows[:limit], next_cursor


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def touch(lead: Lead) -> None:
    """Every write to a lead moves its ETag."""
    lead.version += 1
    lead.updated_at = clock.now()


async def run_rules(
    session: AsyncSession,
    lead: Lead,
    trigger: str,
    now: datetime,
    *,
    data: dict[str, Any] | None = None,
    entered_status: bool = False,
) -> None:
    await rules.apply_rules(session, lead, trigger, now, data=data, entered_status=entered_status)


async def update_lead(session: AsyncSession, principal: Principal, lead: Lead, data: LeadUpdate) -> None:
    changes = data.model_dump(exclude_unset=True)
    org_id = principal.org_id
    if "owner_id" in changes:
        await ensure_user(session, org_id, changes["owner_id"], "body.owner_id")
        if changes["owner_id"] != lead.owner_id:
            await owner_change_allowed(session, principal)
    if "property_id" in changes:
        await ensure_property(session, org_id, changes["property_id"], "body.property_id")
    next_action = changes.pop("next_action", "unset")
    if isinstance(next_action, dict):
        await ensure_user(session, org_id, next_action.get("owner_id"), "body.next_action.owner_id")

    diff: dict[str, dict[str, Any]] = {}
    contact_changes = {key: changes.pop(key) for key in _CONTACT_FIELDS if key in changes}
    if contact_changes:
        contact = await session.scalar(
            select(Contact).where(Contact.id == lead.contact_id).with_for_update(key_share=True)
        )
        assert contact is not None
        for key, value in contact_changes.items():
            if getattr(contact, key) != value:
                diff[key] = {"from": getattr(contact, key), "to": value}
                setattr(contact, key, value)
        if any(key in diff for key in _CONTACT_FIELDS):
            contact.full_name = " ".join(part for part in (contact.first_name, contact.last_name) if part) or None
    for key, value in changes.items():
        if key in {"preferred_tour_times"} and value is None:
            value = []
        if key in {"kind", "temperature"} and value is None:
            continue  # not nullable
        before = getattr(lead, key)
        if before != value:
            diff[key] = {"from": _jsonable(before), "to": _jsonable(value)}
            setattr(lead, key, value)
    if next_action != "unset":
        _set_next_action(lead, next_action, diff)

    if not diff:
        return
    if "owner_id" in diff:  # a person decided: open offers end, the pool lets go
        lead.pooled_at = None
        await cancel_pending_offers(session, lead, clock.now(), "owner set by a person")
    touch(lead)
    for key, event_type in (
        ("owner_id", EventType.owner_changed),
        ("temperature", EventType.temperature_changed),
        ("property_id", EventType.property_changed),
    ):
        if key in diff:
            add_event(session, lead, event_type, data=diff[key], actor_type="user", actor_id=principal.user_id)
    rest = {key: value for key, value in diff.items() if key not in _OWN_EVENT_FIELDS}
    if "next_action" in rest:
        add_event(
            session,
            lead,
            EventType.next_action_set,
            data=rest.pop("next_action"),
            actor_type="user",
            actor_id=principal.user_id,
        )
    if rest:
        add_event(
            session,
            lead,
            EventType.fields_updated,
            data={"fields": rest},
            actor_type="user",
            actor_id=principal.user_id,
        )
    await _flush_unique(session)


async def owner_change_allowed(session: AsyncSession, principal: Principal) -> None:
    """Owner changes by a person need a manager or admin, or the organization's `agents_can_reassign`."""
    if principal.role in (Role.admin, Role.manager):
        return
    allowed = await session.scalar(select(Organization.agents_can_reassign).where(Organization.id == principal.org_id))
    if not allowed:
        raise Forbidden("Changing a lead's owner needs a manager or an admin.")


def _set_next_action(lead: Lead, value: dict[str, Any] | None, diff: dict[str, dict[str, Any]]) -> None:
    new = (None, None, None) if value is None else (value["type"], value.get("due_at"), value.get("owner_id"))
    if new[0] == "none":
        new = (None, None, None)
    old = (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id)
    if old == new:
        return
    lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id = new
    lead.next_action_source = {"set_by": "user", "decided_at": clock.now().isoformat()}
    diff["next_action"] = {
        "from": None
        if old[0] is None
        else {"type": old[0], "due_at": _jsonable(old[1]), "owner_id": _jsonable(old[2])},
        "to": None if new[0] is None else {"type": new[0], "due_at": _jsonable(new[1]), "owner_id": _jsonable(new[2])},
    }


async def _flush_unique(session: AsyncSession) -> None:
    """A property change can collide with the contact's other open lead for that property."""
    try:  # begin_nested() flushes pending changes itself, so the collision can surface there too
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        raise Conflict("This contact already has an open lead for that property.") from error


async def change_status(session: AsyncSession, principal: Principal, lead: Lead, body: StatusChange) -> None:
    current, target = LeadStatus(lead.status), LeadStatus(body.status)
    lead_status.check_transition(current, target)
    if body.status_label_id is not None:
        await ensure_status_label(session, principal.org_id, body.status_label_id, target, "body.status_label_id")
    now = clock.now()
    lead_status.apply_status(lead, target, now, lost_reason=body.lost_reason)
    if target == LeadStatus.lost:
        lead.lost_reason = body.lost_reason
        lead.lost_reason_text = body.lost_reason_text
    lead.status_label_id = body.status_label_id
    touch(lead)
    add_status_event(
        session,
        lead,
        current,
        occurred_at=now,
        actor_type="user",
        actor_id=principal.user_id,
        reason=body.lost_reason.value if body.lost_reason else None,
        reason_text=body.lost_reason_text,
        status_label_id=_jsonable(body.status_label_id),
    )
    data = {"lost_reason": body.lost_reason, "status_label_id": body.status_label_id}
    await run_rules(session, lead, target, now, data=data)
    await _flush_unique(session)  # reopening a lost lead can collide with a newer open one


async def record_touch(
    session: AsyncSession,
    principal: Principal,
    lead: Lead,
    event_type: str,
    occurred_at: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """A staff touch (outbound call, meeting, tour booked): forward-only status move and first response;
    the rules re-evaluate the next step every time, not only when the status moved."""
    previous = lead_status.advance_for_touch(lead, event_type, occurred_at)
    if lead.last_touch_at is None or occurred_at > lead.last_touch_at:
        lead.last_touch_at = occurred_at
    touch(lead)
    if previous is not None:
        lead.status_label_id = None  # the organization's label named the old status
        add_status_event(
            session,
            lead,
            previous,
            occurred_at=occurred_at,
            actor_type="user",
            actor_id=principal.user_id,
            cause=event_type,
        )
    await run_rules(session, lead, event_type, clock.now(), data=data, entered_status=previous is not None)
