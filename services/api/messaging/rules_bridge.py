"""What messaging itself does with a renter's touch, after the automation engine has decided the replies.

Called right after `apply_rules` in the intake apply path (services/api/signals/service.py). The first replies
(text-back, acknowledgement, tour-request answers, the follow-up a day later) are the engine's
(services/api/automation/, through its effects seam), so "one renter, one conversation" governs them. Here:
STOP/START/HELP feed the consent ledger, a renter's message cancels queued follow-ups, a sensitive message
goes to a person (neutral acknowledgement, review item with an SLA, automation paused), and the owner and the
landlord hear of new leads, tour requests and questions.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.automation.review import schedule_sla
from services.api.leads.events import add_event
from services.api.messaging.consent import record_consent
from services.api.messaging.notify import lead_watchers, notify
from services.api.messaging.outbox import queue_message, suppress_pending
from services.api.messaging.sensitive import detect
from services.api.review.service import record_review_item_created
from shared import clock
from shared.enums import Channel, EventType, LeadStatus, ReviewStatus
from shared.identity import identity_keys
from shared.models import Lead, MessagingSettings, OutboundMessage, ReviewItem
from shared.models.lead import LEAD_LOCK
from shared.repositories.identities import find_contact_ids
from shared.schemas.signal import LeadSignal, SignalOutcome

RENTER_WORDS = frozenset(
    {
        EventType.sms_in,
        EventType.email_in,
        EventType.reply,
        EventType.inquiry,
        EventType.question,
        EventType.tour_request,
    }
)
PAUSE_REASON = "sensitive_conversation"
OUR_MESSAGE_ID = re.compile(r"<?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@", re.IGNORECASE)


def _rule(name: str) -> dict[str, object]:
    return {"id": name, "version": 1, "source": "services/api/messaging/rules_bridge.py"}


async def after_signal(
    session: AsyncSession,
    lead: Lead,
    event_type: str,
    signal: LeadSignal,
    *,
    inbound_id: uuid.UUID,
    lead_created: bool,
) -> None:
    phone = signal.contact.phone
    if event_type in (EventType.opt_out, EventType.opt_in) and signal.channel == Channel.sms:
        state = "opted_out" if event_type == EventType.opt_out else "opted_in"
        await record_consent(
            session,
            lead.org_id,
            channel="sms",
            state=state,
            source="sms_keyword",
            contact_id=lead.contact_id,
            address=phone,
            detail=(signal.message or "").strip()[:200] or None,
            inbound_id=inbound_id,
            at=signal.occurred_at,
        )
        return
    if signal.event == "help":
        await queue_message(
            session,
            lead=lead,
            channel="sms",
            template="help",
            kind="reply",
            reason="help keyword",
            rule=_rule("help_keyword"),
            idempotency_key=f"help:{inbound_id}",
        )
        return
    if event_type in RENTER_WORDS and not lead_created:
        await suppress_pending(session, lead.id, reason="renter_replied")
    hit = (
        detect(" ".join(part for part in (signal.subject, signal.message) if part))
        if event_type in RENTER_WORDS
        else None
    )
    if hit is not None:
        await _sensitive(session, lead, signal, inbound_id, hit.category, hit.phrase)
        return
    await _notify_staff(session, lead, event_type, signal, inbound_id, lead_created)


async def _notify_staff(
    session: AsyncSession,
    lead: Lead,
    event_type: str,
    signal: LeadSignal,
    inbound_id: uuid.UUID,
    lead_created: bool,
) -> None:
    """A new lead that asks for a tour or a question is one notification (of the specific kind, standing for
    new_lead too), not two: staff read one email per renter touch."""
    name = signal.contact.full_name or signal.contact.first_name or "A renter"
    if event_type in (EventType.tour_request, EventType.question):
        what = "asked for a tour" if event_type == EventType.tour_request else "asked a question"
        source = signal.source.source
        await notify(
            session,
            org_id=lead.org_id,
            user_ids=await lead_watchers(session, lead),
            kind=str(event_type),
            lead_id=lead.id,
            title=f"New lead: {name} {what} ({source})" if lead_created else f"{name} {what}",
            body=(signal.message or "")[:2000] + f"\n\nLead: {lead.id}",
            data={
                "inbound_id": str(inbound_id),
                "preferred_tour_times": signal.preferences.preferred_tour_times,
                **({"new_lead": True, "source": source} if lead_created else {}),
            },
            key=f"{event_type}:{inbound_id}",
            also=("new_lead",) if lead_created else (),
        )
    elif lead_created:
        await notify(
            session,
            org_id=lead.org_id,
            user_ids=await lead_watchers(session, lead),
            kind="new_lead",
            lead_id=lead.id,
            title=f"New lead: {name} ({signal.source.source})",
            body=(signal.message or "")[:2000] + f"\n\nLead: {lead.id}",
            data={"source": signal.source.source},
            key=f"new_lead:{lead.id}",
        )


async def _sensitive(
    session: AsyncSession, lead: Lead, signal: LeadSignal, inbound_id: uuid.UUID, category: str, phrase: str
) -> None:
    """Only a neutral acknowledgement; a review item with an SLA; automation paused until a person resolves it."""
    now = clock.now()
    settings = await session.get(MessagingSettings, lead.org_id)
    due = now + timedelta(minutes=settings.sensitive_sla_minutes if settings else 60)
    channel = "sms" if signal.channel == Channel.sms else None
    await suppress_pending(session, lead.id, reason=PAUSE_REASON, kinds=("reply", "proactive"))
    await queue_message(
        session,
        lead=lead,
        channel=channel,
        template="sensitive_ack",
        kind="reply",
        reason=f"sensitive conversation ({category}): neutral acknowledgement only",
        rule=_rule("sensitive_conversation"),
        idempotency_key=f"sensitive_ack:{inbound_id}",
    )
    lead.automation_paused_at = now
    lead.automation_paused_reason = PAUSE_REASON
    reason = {"category": category, "phrase": phrase, "sla_due_at": due.isoformat(), "inbound_id": str(inbound_id)}
    item = ReviewItem(
        id=uuid.uuid4(),
        org_id=lead.org_id,
        kind="sensitive_conversation",
        status=ReviewStatus.open,
        contact_id=lead.contact_id,
        lead_id=lead.id,
        inbound_id=inbound_id,
        candidate_contact_ids=[],
        reasons=[reason],
    )
    session.add(item)
    record_review_item_created(session, item)
    await schedule_sla(session, lead, item, due, now)
    add_event(session, lead, EventType.sensitive_conversation, data={**reason, "review_item_id": str(item.id)})
    await notify(
        session,
        org_id=lead.org_id,
        user_ids=await lead_watchers(session, lead),
        kind="sensitive_conversation",
        lead_id=lead.id,
        title=f"Sensitive conversation ({category}): a person must answer",
        body=f"Matched phrase: {phrase!r}. Automation is paused for this lead until the review item is resolved."
        f"\n\nLead: {lead.id}",
        data={"review_item_id": str(item.id), **reason},
        key=f"sensitive:{inbound_id}",
    )


async def resolve_sensitive(session: AsyncSession, item: ReviewItem) -> None:
    """A person resolved the item: automation resumes for the lead (unless another item is still open)."""
    if item.lead_id is None:
        return
    still_open = await session.scalar(
        select(ReviewItem.id).where(
            ReviewItem.lead_id == item.lead_id,
            ReviewItem.kind == "sensitive_conversation",
            ReviewItem.status == ReviewStatus.open,
            ReviewItem.id != item.id,
        )
    )
    lead = await session.get(Lead, item.lead_id, with_for_update=LEAD_LOCK)
    if lead is not None and still_open is None and lead.automation_paused_reason == PAUSE_REASON:
        lead.automation_paused_at = None
        lead.automation_paused_reason = None


async def threaded_lead(
    session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID, signal: LeadSignal
) -> Lead | None:
    """An email answering one of ours (In-Reply-To / References carry our message id): that message's lead,
    when it is this renter's and still open."""
    if signal.event != "reply":
        return None
    ids = [signal.external_ids.get(key) for key in ("thread", "thread_root")]
    message_ids = [uuid.UUID(m.group(1)) for value in ids if value and (m := OUR_MESSAGE_ID.search(value))]
    if not message_ids:
        return None
    lead_id = await session.scalar(
        select(OutboundMessage.lead_id).where(OutboundMessage.org_id == org_id, OutboundMessage.id.in_(message_ids))
    )
    if lead_id is None:
        return None
    lead = await session.scalar(select(Lead).where(Lead.id == lead_id).with_for_update(key_share=True))
    if lead is None or lead.contact_id != contact_id or lead.status in (LeadStatus.lost, LeadStatus.leased):
        return None
    return lead


async def keyword_from_stranger(
    session: AsyncSession, org_id: uuid.UUID, inbound_id: uuid.UUID, signal: LeadSignal
) -> SignalOutcome | None:
    """STOP/START from a number no contact has: record consent on the bare number and make no lead.
    None when the number is known (the normal path records it on the renter's lead)."""
    phone = signal.contact.phone
    if signal.channel != Channel.sms or not phone:
        return None
    keys = identity_keys(signal.contact, frozenset())
    await txmemo.write_pending_contacts(session)  # a renter created earlier in this batch is known by this number
    if await find_contact_ids(session, org_id, keys):
        return None
    await record_consent(
        session,
        org_id,
        channel="sms",
        state="opted_out" if signal.event == "opt_out" else "opted_in",
        source="sms_keyword",
        address=phone,
        detail=(signal.message or "").strip()[:200] or None,
        inbound_id=inbound_id,
        at=signal.occurred_at,
    )
    return SignalOutcome(contact_id=None, lead_id=None, created=False)


async def after_invitation(
    session: AsyncSession, lead: Lead, *, event_id: uuid.UUID, message: str | None, user_id: uuid.UUID | None
) -> None:
    """ "Invite to apply" reaches the renter: an email (a person's send) from the invitation's text or the
    `invite_to_apply` template."""
    await queue_message(
        session,
        lead=lead,
        channel="email",
        template="invite_to_apply",
        body=message or None,
        subject="You're invited to apply: {{property_name}}" if message else None,
        kind="human",
        reason="invitation to apply",
        rule=_rule("invitation_to_apply"),
        idempotency_key=f"invite:{event_id}",
        created_by_id=user_id,
    )
