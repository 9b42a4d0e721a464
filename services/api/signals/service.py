"""Apply one normalized lead signal: the intake worker's handoff, in one transaction.

Idempotent on the inbound id (a transaction-scoped advisory lock serializes redeliveries of the same
signal, and the stored outcome answers the second one). Resolving the renter trusts the worker's verdict
only as a hint: the identity constraint decides, so 50 racing signals for one new renter make one contact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.contacts.resolution import (
    claim_identities,
    create_contact,
    find_contact_ids,
    find_open_lead,
    live_contact_id,
    lock_identity_keys,
    open_lead_for,
    recent_lost_lead,
)
from services.api.leads.events import add_event
from services.api.leads.pipeline import advance_for_touch, apply_status
from services.api.leads.rules import apply_rules
from services.api.review.service import open_duplicate_review
from shared.blocklist import blocked_identities
from shared.enums import Channel, ConsentState, EventType, LeadStatus, MatchVerdict, SignalEvent
from shared.errors import DuplicateContact, NotFound
from shared.identity import IdentityKeys, identity_keys
from shared.models import Contact, Lead, Organization, Property, SignalApplication
from shared.schemas.signal import LeadSignal, MatchResult, SignalEnvelope, SignalOutcome

TOUCH_EVENT: dict[SignalEvent, EventType] = {
    SignalEvent.inquiry: EventType.inquiry,
    SignalEvent.tour_request: EventType.tour_request,
    SignalEvent.question: EventType.question,
    SignalEvent.application: EventType.application,
    SignalEvent.missed_call: EventType.missed_call,
    SignalEvent.call: EventType.call,
    SignalEvent.sms_inbound: EventType.sms_in,
    SignalEvent.opt_out: EventType.opt_out,
    SignalEvent.opt_in: EventType.opt_in,
    SignalEvent.help: EventType.sms_in,
}

# lead field ← signal preference: a newer non-blank value wins, a blank never erases
PREFERENCE_FIELDS = (
    "move_in_date",
    "move_in_text",
    "bedrooms",
    "bathrooms",
    "budget_min",
    "budget_max",
    "pets",
    "pets_text",
    "unit_type",
    "lease_length_months",
    "occupants",
)


def touch_event_type(signal: LeadSignal) -> EventType:
    if signal.event == SignalEvent.reply:
        return EventType.sms_in if signal.channel == Channel.sms else EventType.email_in
    return TOUCH_EVENT[signal.event]


@dataclass
class ResolvedContact:
    contact: Contact
    created: bool
    review_reasons: list[str]
    review_candidates: list[uuid.UUID]
    keys: IdentityKeys


async def apply_signal(session: AsyncSession, envelope: SignalEnvelope) -> SignalOutcome:
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(str(envelope.inbound_id), 0))))
    done = await session.get(SignalApplication, envelope.inbound_id)
    if done is not None:
        if done.org_id != envelope.org_id:
            raise NotFound("Inbound message not found.")
        return _outcome(done)
    org = await session.get(Organization, envelope.org_id)
    if org is None:
        raise NotFound("Organization not found.")
    signal = envelope.signal
    now = datetime.now(UTC)
    property_id = await _checked_property(session, org.id, signal.property.property_id)
    resolved = await _resolve_contact(session, org.id, signal, envelope.match)
    _update_contact(resolved.contact, signal, resolved.keys)
    lead, lead_created = await _find_or_open_lead(session, resolved.contact, property_id, signal, now)
    event_type = touch_event_type(signal)
    _update_lead(lead, signal, lead_created)
    if lead_created:
        add_event(
            session,
            lead,
            EventType.created,
            occurred_at=signal.occurred_at,
            actor_type="system",
            source=signal.source.source,
            channel=signal.channel,
            inbound_id=envelope.inbound_id,
            data={"source": signal.source.source, "sub_source": signal.source.sub_source},
        )
    add_event(
        session,
        lead,
        event_type,
        occurred_at=signal.occurred_at,
        actor_type="renter",
        source=signal.source.source,
        channel=signal.channel,
        inbound_id=envelope.inbound_id,
        data=_event_data(signal, envelope.match, resolved),
    )
    previous_status = advance_for_touch(lead, event_type, signal.occurred_at)
    if previous_status is not None:
        add_event(
            session,
            lead,
            EventType.status_changed,
            occurred_at=signal.occurred_at,
            actor_type="system",  # the pipeline's reaction to the renter's touch, not a touch itself
            source=signal.source.source,
            inbound_id=envelope.inbound_id,
            data={"from": previous_status.value, "to": lead.status, "reason": None, "cause": event_type},
        )
    await apply_rules(session, lead, event_type, now, sms_consent=resolved.contact.sms_consent)
    review_item_id = None
    if resolved.review_reasons:
        review_item_id = await open_duplicate_review(
            session,
            org.id,
            contact_id=resolved.contact.id,
            lead_id=lead.id,
            inbound_id=envelope.inbound_id,
            candidate_ids=resolved.review_candidates,
            reasons=resolved.review_reasons,
        )
        if review_item_id is not None:
            add_event(
                session,
                lead,
                EventType.match,
                data={"review_item_id": str(review_item_id), "reasons": resolved.review_reasons},
            )
    lead.version += 1
    lead.updated_at = now
    application = SignalApplication(
        inbound_id=envelope.inbound_id,
        org_id=org.id,
        contact_id=resolved.contact.id,
        lead_id=lead.id,
        created=lead_created,
        contact_created=resolved.created,
        review_item_id=review_item_id,
        applied_at=now,
    )
    session.add(application)
    await session.flush()
    return _outcome(application)


def _outcome(application: SignalApplication) -> SignalOutcome:
    return SignalOutcome(
        contact_id=application.contact_id,
        lead_id=application.lead_id,
        created=application.created,
        contact_created=application.contact_created,
        review_item_id=application.review_item_id,
    )


async def _checked_property(
    session: AsyncSession, org_id: uuid.UUID, property_id: uuid.UUID | None
) -> uuid.UUID | None:
    if property_id is None:
        return None
    found = await session.scalar(select(Property.id).where(Property.id == property_id, Property.org_id == org_id))
    return found


async def _resolve_contact(
    session: AsyncSession, org_id: uuid.UUID, signal: LeadSignal, match: MatchResult
) -> ResolvedContact:
    keys = identity_keys(signal.contact, await blocked_identities(session, org_id))
    reasons: list[str] = []
    candidates: list[uuid.UUID] = []
    if match.verdict == MatchVerdict.review:
        reasons = list(match.reasons)
        candidates = [candidate.contact_id for candidate in match.candidates]
    await lock_identity_keys(session, org_id, keys)
    owners = await find_contact_ids(session, org_id, keys)
    if match.verdict == MatchVerdict.review and match.contact_id is not None and len(owners) <= 1:
        # same phone, different name: a new person who must not take the shared phone as identity
        keys = IdentityKeys(usable=[key for key in keys.usable if key[0] != "phone"], notes=keys.notes)
        owners = await find_contact_ids(session, org_id, keys)
    if owners:
        chosen = _prefer_email_owner(owners)
        if len(owners) > 1 and not reasons:
            reasons = [f"{'+'.join(kinds)} matches contact {cid}" for cid, kinds in owners.items()]
            reasons.insert(0, "conflict found while applying: email and phone belong to different contacts")
            candidates = list(owners)
        contact = await _load_contact(session, await live_contact_id(session, chosen))
        await _claim_free_keys(session, org_id, contact.id, keys, signal)
        return ResolvedContact(contact, False, reasons, candidates, keys)
    try:
        contact = await create_contact(
            session,
            org_id,
            kind=signal.contact.kind,
            full_name=signal.contact.full_name,
            first_name=signal.contact.first_name,
            last_name=signal.contact.last_name,
            email=keys.value("email") or None,
            phone=keys.value("phone"),
            source=signal.source.source,
            identities=keys.usable,
        )
        return ResolvedContact(contact, True, reasons, candidates, keys)
    except DuplicateContact:
        # a concurrent signal created this renter between our read and our insert: join it
        owners = await find_contact_ids(session, org_id, keys)
        contact = await _load_contact(session, await live_contact_id(session, _prefer_email_owner(owners)))
        await _claim_free_keys(session, org_id, contact.id, keys, signal)
        return ResolvedContact(contact, False, reasons, candidates, keys)


def _prefer_email_owner(owners: dict[uuid.UUID, list[str]]) -> uuid.UUID:
    """Phones are shared (family lines, office lines) more often than emails: the email owner wins a conflict."""
    return max(owners, key=lambda cid: ("email" in owners[cid], len(owners[cid])))


async def _claim_free_keys(
    session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID, keys: IdentityKeys, signal: LeadSignal
) -> None:
    """Add the keys nobody holds yet to this contact (a renter's new phone); held ones stay where they are."""
    if keys.usable:
        await claim_identities(session, org_id, contact_id, keys.usable, signal.source.source)


async def _load_contact(session: AsyncSession, contact_id: uuid.UUID) -> Contact:
    """Lock the contact; if a merge moved it while we waited, follow to the survivor."""
    for _ in range(5):
        contact = await session.scalar(select(Contact).where(Contact.id == contact_id).with_for_update())
        if contact is None:
            raise NotFound("Matched contact no longer exists.")
        if contact.merged_into_id is None:
            return contact
        contact_id = contact.merged_into_id
    raise NotFound("Matched contact was merged too many times to follow.")


def _update_contact(contact: Contact, signal: LeadSignal, keys: IdentityKeys) -> None:
    """Fill blanks only: ILS display names are noisy and must not overwrite a name a person confirmed."""
    incoming = signal.contact
    if not contact.first_name and incoming.first_name:
        contact.first_name = incoming.first_name
    if not contact.last_name and incoming.last_name:
        contact.last_name = incoming.last_name
    if not contact.full_name and (incoming.full_name or incoming.first_name or incoming.last_name):
        contact.full_name = incoming.full_name or " ".join(p for p in (incoming.first_name, incoming.last_name) if p)
    if not contact.primary_email and keys.value("email"):
        contact.primary_email = keys.value("email")
    if not contact.primary_phone and keys.value("phone"):
        contact.primary_phone = keys.value("phone")
    if signal.event == SignalEvent.opt_out:
        contact.sms_consent = ConsentState.opted_out
    elif signal.event == SignalEvent.opt_in:
        contact.sms_consent = ConsentState.opted_in


async def _find_or_open_lead(
    session: AsyncSession, contact: Contact, property_id: uuid.UUID | None, signal: LeadSignal, now: datetime
) -> tuple[Lead, bool]:
    lost = await recent_lost_lead(session, contact.org_id, contact.id, property_id, now)
    if lost is not None and await find_open_lead(session, contact.org_id, contact.id, property_id) is None:
        apply_status(lost, LeadStatus.new, now)
        add_event(
            session,
            lost,
            EventType.status_changed,
            occurred_at=now,
            data={"from": LeadStatus.lost, "to": LeadStatus.new, "reason": "renter came back"},
        )
        return lost, False
    defaults = {
        "kind": contact.kind,
        "source": signal.source.source,
        "sub_source": signal.source.sub_source,
        "latest_source": signal.source.source,
    }
    return await open_lead_for(session, contact.org_id, contact.id, property_id, defaults)


def _update_lead(lead: Lead, signal: LeadSignal, created: bool) -> None:
    preferences = signal.preferences
    for field in PREFERENCE_FIELDS:
        value = getattr(preferences, field)
        if value is not None:
            setattr(lead, field, value)
    if preferences.preferred_tour_times:
        lead.preferred_tour_times = list(
            dict.fromkeys([*(lead.preferred_tour_times or []), *preferences.preferred_tour_times])
        )
    if lead.source is None:
        lead.source = signal.source.source
        lead.sub_source = signal.source.sub_source
    lead.latest_source = signal.source.source
    if lead.last_touch_at is None or signal.occurred_at > lead.last_touch_at:
        lead.last_touch_at = signal.occurred_at


def _event_data(signal: LeadSignal, match: MatchResult, resolved: ResolvedContact) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event": signal.event,
        "message": signal.message,
        "subject": signal.subject,
        "sub_source": signal.source.sub_source,
        "reply_to": signal.contact.reply_to,
        "preferences": signal.preferences.model_dump(mode="json", exclude_defaults=True),
        "external_ids": signal.external_ids,
        "match": {"verdict": match.verdict, "reasons": match.reasons, "contact_created": resolved.created},
    }
    return {key: value for key, value in data.items() if value not in (None, {}, [])}
