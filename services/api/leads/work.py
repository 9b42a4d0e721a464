"""Work logged on a lead by staff: notes, call/meeting logs, invitations to apply."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.service import Principal
from services.api.contacts.resolution import create_contact, lock_identity_keys, open_lead_for
from services.api.leads.events import add_event, add_event_row
from services.api.leads.refs import ensure_property
from services.api.leads.service import record_touch, run_rules, touch
from services.api.leads.work_schemas import ActivityCreate, InvitationRequest, InvitationResult, NoteCreate
from services.api.messaging import rules_bridge
from services.api.owners.scope import ensure_reused_lead_in_scope
from shared import clock
from shared.blocklist import blocked_identities
from shared.enums import ActivityDirection, ActivityKind, Channel, ContactKind, EventType
from shared.errors import DuplicateContact, ValidationFailed
from shared.identity import IdentityKeys, identity_keys
from shared.models import Lead, LeadEvent
from shared.repositories.identities import find_contact_ids
from shared.schemas.signal import SignalContact

INVITATION_SOURCE = "invitation"


def add_note(session: AsyncSession, principal: Principal, lead: Lead, body: NoteCreate) -> LeadEvent:
    return add_event_row(
        session, lead, EventType.note, actor_type="user", actor_id=principal.user_id, data={"body": body.body}
    )


# kind → (timeline event when outbound, when inbound, channel, trigger the rules hear for an inbound one)
_ACTIVITY: dict[ActivityKind, tuple[EventType, EventType, Channel, EventType]] = {
    ActivityKind.call: (EventType.call_logged, EventType.call_logged, Channel.phone, EventType.call),
    ActivityKind.meeting: (EventType.meeting_logged, EventType.meeting_logged, Channel.walk_in, EventType.call),
    ActivityKind.email: (EventType.email_out, EventType.email_in, Channel.email, EventType.email_in),
    ActivityKind.text: (EventType.sms_out, EventType.sms_in, Channel.sms, EventType.sms_in),
}


async def log_activity(session: AsyncSession, principal: Principal, lead: Lead, body: ActivityCreate) -> LeadEvent:
    now = clock.now()
    occurred_at = min(body.occurred_at or now, now)  # a log is of something that happened
    outbound_type, inbound_type, channel, inbound_trigger = _ACTIVITY[body.kind]
    response = body.kind == ActivityKind.meeting or body.direction == ActivityDirection.outbound
    event_type = outbound_type if response else inbound_type
    event = add_event_row(
        session,
        lead,
        event_type,
        occurred_at=occurred_at,
        actor_type="user",
        actor_id=principal.user_id,
        channel=channel,
        data={"direction": body.direction.value, "outcome": body.outcome, "notes": body.notes},
    )
    if response:
        # an outbound email, text or call, or any meeting, is a person reaching the renter: a human response
        if lead.first_human_response_at is None:
            lead.first_human_response_at = occurred_at
        await record_touch(session, principal, lead, event_type, occurred_at)
    else:  # the renter reached the team (logged by hand): their touch, heard by the rules like one from intake
        if lead.last_touch_at is None or occurred_at > lead.last_touch_at:
            lead.last_touch_at = occurred_at
        touch(lead)
        await run_rules(session, lead, inbound_trigger, now, data={"channel": channel.value})
    await session.flush()
    return event


async def invite(session: AsyncSession, principal: Principal, body: InvitationRequest) -> list[InvitationResult]:
    """Each email becomes (or reuses) the person's open lead for the property; one invitation_sent each."""
    org_id = principal.org_id
    await ensure_property(session, org_id, body.property_id, "body.property_id")
    blocked = await blocked_identities(session, org_id)
    keys_by_email = {}
    for index, email in enumerate(body.emails):
        keys = identity_keys(SignalContact(email=email), blocked)
        if not keys.usable:
            raise ValidationFailed(
                "Some addresses cannot be invited.",
                errors=[{"field": f"body.emails.{index}", "message": "; ".join(keys.notes) or "not usable"}],
            )
        keys_by_email[email] = keys
    # every key locked at once, in one sorted order: two overlapping invitation lists cannot deadlock
    await lock_identity_keys(
        session, org_id, IdentityKeys(usable=[k for keys in keys_by_email.values() for k in keys.usable])
    )
    now = clock.now()
    results: list[InvitationResult] = []
    for email, keys in keys_by_email.items():  # dict: each address once, in the order given
        found = await find_contact_ids(session, org_id, keys)
        contact_id = next(iter(found), None)
        if contact_id is None:
            try:
                contact = await create_contact(
                    session,
                    org_id,
                    kind=ContactKind.tenant,
                    email=email,
                    source=INVITATION_SOURCE,
                    identities=list(keys.usable),
                )
                contact_id = contact.id
            except DuplicateContact as error:  # claimed concurrently: use the winner
                contact_id = uuid.UUID(error.extra["existing_contact_id"])
        defaults = {"source": INVITATION_SOURCE, "latest_source": INVITATION_SOURCE, "kind": ContactKind.tenant}
        lead, created = await open_lead_for(session, org_id, contact_id, body.property_id, defaults)
        if not created:
            await ensure_reused_lead_in_scope(session, principal, lead.id, f"body.emails.{body.emails.index(email)}")
        actor: dict[str, Any] = {"actor_type": "user", "actor_id": principal.user_id}
        if created:
            add_event(session, lead, EventType.created, occurred_at=now, source=INVITATION_SOURCE, data={}, **actor)
            await run_rules(session, lead, EventType.created, now)
        invitation_id = add_event(
            session,
            lead,
            EventType.invitation_sent,
            occurred_at=now,
            channel=Channel.email,
            data={"message": body.message},
            **actor,
        )
        await rules_bridge.after_invitation(
            session, lead, event_id=invitation_id, message=body.message, user_id=principal.user_id
        )
        results.append(InvitationResult(email=email, lead_id=lead.id, created=created))
    await session.flush()
    return results
