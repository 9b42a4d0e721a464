"""Apply one normalized lead signal: the intake worker's handoff, in one transaction.

Idempotent on the inbound id (a transaction-scoped advisory lock serializes redeliveries of the same
signal, and the stored outcome answers the second one). Resolving the renter trusts the worker's verdict
only as a hint: the identity constraint decides, so 50 racing signals for one new renter make one contact.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from services.api.automation.conditions import ContactInfo
from services.api.contacts.resolution import (
    claim_identities,
    find_lead_to_touch,
    insert_contact,
    lock_identity_keys,
)
from services.api.leads.events import add_event, add_status_event
from services.api.leads.rules import apply_rules, assign_owner_if_missing
from services.api.leads.status import advance_for_touch, apply_status
from services.api.messaging import rules_bridge
from services.api.messaging.consent import note_new_contact
from services.api.review.service import open_duplicate_review
from services.api.signals.limits import fit_signal
from shared import clock
from shared.blocklist import BLOCKED_IDENTITIES_SQL
from shared.enums import Channel, ConsentState, EventType, LeadStatus, MatchVerdict, SignalEvent
from shared.errors import NotFound
from shared.identity import IdentityKeys, identity_keys
from shared.models import Contact, Lead, SignalApplication
from shared.repositories.identities import (
    contact_ids_from,
    find_contact_ids,
    find_owners_of_many,
    prefer_email_owner,
)
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
    contact_id: uuid.UUID
    org_id: uuid.UUID
    kind: str
    sms_consent: str
    created: bool
    review_reasons: list[str]
    review_candidates: list[uuid.UUID]
    keys: IdentityKeys
    info: ContactInfo  # what the engine checks before writing to the renter, known here without a read
    callback_phone: str | None = None  # the renter's phone when another contact holds it: display only


async def apply_signal(session: AsyncSession, envelope: SignalEnvelope) -> SignalOutcome:
    fitted, truncated = fit_signal(envelope.signal)  # over-long values cut to their columns, never refused
    envelope = envelope.model_copy(update={"signal": fitted})
    await txmemo.advisory_lock(session, str(envelope.inbound_id))  # the batch usually holds it already
    context = await _load_context(session, envelope)  # after the lock: sees a twin's committed outcome
    if context.done is not None:
        return context.done
    signal = envelope.signal
    now = clock.now()
    if signal.event in (SignalEvent.opt_out, SignalEvent.opt_in):
        consent_only = await rules_bridge.keyword_from_stranger(session, envelope.org_id, envelope.inbound_id, signal)
        if consent_only is not None:
            return consent_only  # STOP/START from a number nobody knows: consent recorded, no lead
    resolved = await _resolve_contact(session, envelope.org_id, signal, envelope.match, context)
    await txmemo.flush_if_touched(session, resolved.contact_id)  # a twin earlier in the batch: see its rows
    threaded = await rules_bridge.threaded_lead(session, envelope.org_id, resolved.contact_id, signal)
    lead, lead_created = (
        (threaded, False)
        if threaded is not None
        else await _find_or_open_lead(session, resolved, context.property_id, signal, now)
    )
    if resolved.callback_phone:
        lead.callback_phone = resolved.callback_phone
    event_type = touch_event_type(signal)
    _update_lead(lead, signal)
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
        data=_event_data(signal, envelope.match, resolved) | ({"truncated": truncated} if truncated else {}),
    )
    previous_status = advance_for_touch(lead, event_type, signal.occurred_at)
    if previous_status is not None:
        add_status_event(  # the pipeline's reaction to the renter's touch (actor system), not a touch itself
            session,
            lead,
            previous_status,
            occurred_at=signal.occurred_at,
            cause=event_type,
            source=signal.source.source,
            inbound_id=envelope.inbound_id,
        )
    await assign_owner_if_missing(session, lead, now=now, agent_hint=signal.agent_hint)
    await apply_rules(
        session,
        lead,
        event_type,
        now,
        sms_consent=resolved.sms_consent,
        agents=context.agents,
        new_lead=lead_created,
        entered_status=previous_status is not None,
        data={"channel": signal.channel, "source": signal.source.source, "event_key": str(envelope.inbound_id)},
        contact=resolved.info,
        new_contact=resolved.created,
        touch_text=" ".join(part for part in (signal.subject, signal.message) if part),
    )
    await txmemo.flush_before_references(session)  # messages and notifications reference the lead row
    await rules_bridge.after_signal(
        session, lead, event_type, signal, inbound_id=envelope.inbound_id, lead_created=lead_created
    )
    review_item_id = None
    if resolved.review_reasons:
        review_item_id = await open_duplicate_review(
            session,
            envelope.org_id,
            contact_id=resolved.contact_id,
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
    if not lead_created:
        lead.version += 1
        lead.updated_at = now
    application = SignalApplication(
        inbound_id=envelope.inbound_id,
        org_id=envelope.org_id,
        contact_id=resolved.contact_id,
        lead_id=lead.id,
        created=lead_created,
        contact_created=resolved.created,
        review_item_id=review_item_id,
        applied_at=now,
    )
    session.add(application)
    # in a batch that defers the references, one flush writes every signal's rows (one INSERT per table): a later
    # signal of the same renter flushes first (txmemo.flush_if_touched), and the batch's savepoint the rest
    await txmemo.flush_before_references(session)
    return _outcome(application)


@dataclass
class SignalContext:
    """Everything the application needs about the organization, read in one round trip."""

    done: SignalOutcome | None
    property_id: uuid.UUID | None
    blocked: frozenset[tuple[str, str]]
    agents: list[uuid.UUID]


_DONE = """
    SELECT 'done' AS kind, CAST(to_jsonb(a) AS text) AS value FROM signal_applications AS a
    WHERE a.inbound_id = :inbound_id AND a.org_id = :org_id
    UNION ALL
"""
_CONTEXT_HEAD = """
    SELECT 'org' AS kind, CAST(o.id AS text) AS value FROM organizations AS o WHERE o.id = :org_id
    UNION ALL
    SELECT 'agent', CAST(u.id AS text) FROM users AS u
    WHERE u.org_id = :org_id AND u.is_active AND u.role = 'agent'
    UNION ALL
    SELECT 'property', CAST(p.id AS text) FROM properties AS p
    WHERE p.id = CAST(:property_id AS uuid) AND p.org_id = :org_id
    UNION ALL
"""
# constant strings: nothing from the request is interpolated, values travel as bind parameters
CONTEXT_SQL = text(_DONE + _CONTEXT_HEAD + BLOCKED_IDENTITIES_SQL)
ORG_CONTEXT_SQL = text(_CONTEXT_HEAD + BLOCKED_IDENTITIES_SQL)  # configuration only: kept across batches
CONTEXT_KINDS = frozenset({"done", "org", "agent", "property"})


DONE_MANY_SQL = text(
    "SELECT a.inbound_id, CAST(to_jsonb(a) AS text) FROM signal_applications AS a"
    " WHERE a.inbound_id = ANY(CAST(:inbound_ids AS uuid[])) AND a.org_id = ANY(CAST(:org_ids AS uuid[]))"
)
DONE_KEY = "signals.done"


async def prefetch_outcomes(session: AsyncSession, envelopes: list[SignalEnvelope]) -> None:
    """An intake batch reads every stored outcome at once, under the inbound-id locks it already holds; each
    signal then finds its own (or its twin's earlier in the batch, `remember_outcome`) without a read."""
    memo = txmemo.slot(session, DONE_KEY)
    if memo is None:
        return
    rows = await session.execute(
        DONE_MANY_SQL,
        {
            "inbound_ids": sorted({envelope.inbound_id for envelope in envelopes}),
            "org_ids": sorted({envelope.org_id for envelope in envelopes}),
        },
    )
    for inbound_id, record in rows:
        memo[inbound_id] = _stored_outcome(record)
    memo["prefetched"] = True


def remember_outcome(session: AsyncSession, inbound_id: uuid.UUID, outcome: SignalOutcome) -> None:
    memo = txmemo.slot(session, DONE_KEY)
    if memo is not None:
        memo[inbound_id] = outcome


def _stored_outcome(record: str) -> SignalOutcome:
    values = json.loads(record)
    return SignalOutcome.model_validate({key: values[key] for key in SignalOutcome.model_fields})


async def _load_context(session: AsyncSession, envelope: SignalEnvelope) -> SignalContext:
    """A static statement: building this as SQLAlchemy constructs cost more CPU than running it. In a batch
    whose outcomes were read up front, the organization's part is read once per property instead."""
    done = txmemo.slot(session, DONE_KEY)
    if done is not None and done.get("prefetched"):
        if envelope.inbound_id in done:
            return SignalContext(done[envelope.inbound_id], None, frozenset(), [])
        key = ("signals.context", envelope.org_id, envelope.signal.property.property_id)
        return await txmemo.remember_config(
            session, envelope.org_id, key, lambda: _read_context(session, envelope, with_done=False)
        )
    return await _read_context(session, envelope, with_done=True)


async def _read_context(session: AsyncSession, envelope: SignalEnvelope, *, with_done: bool) -> SignalContext:
    values = {"org_id": envelope.org_id, "property_id": envelope.signal.property.property_id}
    if with_done:
        rows = await session.execute(CONTEXT_SQL, {**values, "inbound_id": envelope.inbound_id})
    else:
        rows = await session.execute(ORG_CONTEXT_SQL, values)
    found: dict[str, list[str]] = {}
    for kind, value in rows:
        found.setdefault(str(kind), []).append(str(value))
    if "done" in found:
        return SignalContext(_stored_outcome(found["done"][0]), None, frozenset(), [])
    if "org" not in found:
        raise NotFound("Organization not found.")
    blocked = frozenset(
        (kind, value) for kind, values in found.items() if kind not in CONTEXT_KINDS for value in values
    )
    agents = sorted(uuid.UUID(value) for value in found.get("agent", []))
    property_id = uuid.UUID(found["property"][0]) if "property" in found else None
    return SignalContext(None, property_id, blocked, agents)


def _outcome(application: SignalApplication) -> SignalOutcome:
    return SignalOutcome(
        contact_id=application.contact_id,
        lead_id=application.lead_id,
        created=application.created,
        contact_created=application.contact_created,
        review_item_id=application.review_item_id,
    )


async def _resolve_contact(
    session: AsyncSession, org_id: uuid.UUID, signal: LeadSignal, match: MatchResult, context: SignalContext
) -> ResolvedContact:
    """Who this is, decided under the renter's identity-key locks; the worker's verdict is only a hint."""
    keys = identity_keys(signal.contact, context.blocked)
    given_phone = keys.value("phone")
    reasons: list[str] = []
    candidates: list[uuid.UUID] = []
    if match.verdict == MatchVerdict.review:
        reasons = list(match.reasons)
        candidates = [candidate.contact_id for candidate in match.candidates]
    await lock_identity_keys(session, org_id, keys)
    owners = await _find_owners(session, org_id, keys)
    if match.verdict == MatchVerdict.review and match.contact_id is not None and len(owners) <= 1:
        # same phone, different name: a new person who must not take the shared phone as identity
        keys = IdentityKeys(usable=[key for key in keys.usable if key[0] != "phone"], notes=keys.notes)
        owners = {cid: kinds for cid, kinds in owners.items() if kinds != ["phone"]}
    if not owners:
        return await _create_contact(session, org_id, signal, keys, reasons, candidates, given_phone)
    if len(owners) > 1 and not reasons:
        reasons = [f"{'+'.join(kinds)} matches contact {cid}" for cid, kinds in owners.items()]
        reasons.insert(0, "conflict found while applying: email and phone belong to different contacts")
        candidates = list(owners)
    chosen = prefer_email_owner(owners)
    assert chosen is not None  # owners is not empty here
    if txmemo.is_new_renter(session, chosen):  # created earlier in this batch: written before it is locked
        await txmemo.write_pending_contacts(session)
    contact = await _load_contact(session, chosen)
    held = {(kind, value) for kind, value in keys.usable if contact.id in owners and kind in owners[contact.id]}
    missing = [key for key in keys.usable if key not in held and not _owned_elsewhere(key, owners, contact.id)]
    if missing:
        claimed = await claim_identities(session, org_id, contact.id, missing, signal.source.source)
        _note_owner(session, org_id, contact.id, claimed)
        held |= claimed
    _update_contact(contact, signal, keys)
    callback = given_phone if given_phone and ("phone", given_phone) not in held else None
    info = ContactInfo(contact.primary_email, contact.primary_phone, contact.sms_consent, contact.email_consent)
    return ResolvedContact(
        contact.id, org_id, contact.kind, contact.sms_consent, False, reasons, candidates, keys, info, callback
    )


OWNERS_KEY = "signals.identity_owners"


async def prefetch_identities(session: AsyncSession, wanted: set[tuple[uuid.UUID, str, str]]) -> None:
    """An intake batch reads who owns each of its renters' keys once, under the key locks it already holds
    (every writer of an identity takes its key's lock, so the answer holds for the batch); a key nobody owns
    is noted too. What the batch itself claims is noted as it claims it (`_note_owner`)."""
    owners_slot = txmemo.slot(session, OWNERS_KEY)
    if owners_slot is None:
        return
    found = await find_owners_of_many(session, wanted)
    for key in wanted:
        owners_slot[key] = found.get(key)


async def _find_owners(session: AsyncSession, org_id: uuid.UUID, keys: IdentityKeys) -> dict[uuid.UUID, list[str]]:
    """`find_contact_ids`, answered from the batch's read when it covers every key."""
    known = txmemo.slot(session, OWNERS_KEY)
    if known and all((org_id, kind, value) in known for kind, value in keys.usable):
        mine = {(org_id, kind, value): known[(org_id, kind, value)] for kind, value in keys.usable}
        return contact_ids_from({key: owner for key, owner in mine.items() if owner is not None}, org_id, keys)
    return await find_contact_ids(session, org_id, keys)


def _note_owner(session: AsyncSession, org_id: uuid.UUID, contact_id: uuid.UUID, held: set[tuple[str, str]]) -> None:
    known = txmemo.slot(session, OWNERS_KEY)
    if known is not None:
        for kind, value in held:
            known[(org_id, kind, value)] = contact_id


def _owned_elsewhere(key: tuple[str, str], owners: dict[uuid.UUID, list[str]], contact_id: uuid.UUID) -> bool:
    return any(key[0] in kinds for cid, kinds in owners.items() if cid != contact_id)


async def _create_contact(
    session: AsyncSession,
    org_id: uuid.UUID,
    signal: LeadSignal,
    keys: IdentityKeys,
    reasons: list[str],
    candidates: list[uuid.UUID],
    given_phone: str | None = None,
) -> ResolvedContact:
    """Contact and identities in one statement. The key locks make a conflict impossible for writers that
    take them; a writer that didn't would surface here as an unclaimed key, which goes to review."""
    incoming = signal.contact
    contact_id = uuid.uuid4()
    consent = {SignalEvent.opt_out: ConsentState.opted_out, SignalEvent.opt_in: ConsentState.opted_in}.get(
        signal.event, ConsentState.unknown
    )
    full_name = incoming.full_name or " ".join(p for p in (incoming.first_name, incoming.last_name) if p) or None
    claimed = await insert_contact(
        session,
        org_id,
        contact_id,
        list(keys.usable),
        kind=incoming.kind.value,
        full_name=full_name,
        first_name=incoming.first_name,
        last_name=incoming.last_name,
        email=keys.value("email"),
        phone=keys.value("phone"),
        sms_consent=consent.value,
        source=signal.source.source,
    )
    _note_owner(session, org_id, contact_id, claimed)
    note_new_contact(session, org_id, contact_id)
    txmemo.note_new_renter(session, contact_id)
    unclaimed = set(keys.usable) - claimed
    if unclaimed:
        owners = await find_contact_ids(session, org_id, IdentityKeys(usable=sorted(unclaimed)))
        reasons = [*reasons, "an email or phone of this renter was claimed by another contact meanwhile"]
        candidates = [*candidates, *owners]
    callback = given_phone if given_phone and ("phone", given_phone) not in claimed else None
    info = ContactInfo(keys.value("email"), keys.value("phone"), consent, ConsentState.unknown)
    return ResolvedContact(contact_id, org_id, incoming.kind, consent, True, reasons, candidates, keys, info, callback)


async def _load_contact(session: AsyncSession, contact_id: uuid.UUID) -> Contact:
    """Lock the contact; if a merge moved it while we waited, follow to the survivor."""
    for _ in range(5):
        contact = await session.scalar(select(Contact).where(Contact.id == contact_id).with_for_update(key_share=True))
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
    session: AsyncSession, resolved: ResolvedContact, property_id: uuid.UUID | None, signal: LeadSignal, now: datetime
) -> tuple[Lead, bool]:
    """The renter's open lead for this property, else a recently lost one reopened, else a new one."""
    if not resolved.created:
        existing = await find_lead_to_touch(session, resolved.org_id, resolved.contact_id, property_id, now)
        if existing is not None and existing.status != LeadStatus.lost:
            return existing, False
        if existing is not None:
            apply_status(existing, LeadStatus.new, now)
            add_status_event(session, existing, LeadStatus.lost, occurred_at=now, reason="renter came back")
            return existing, False
    lead = Lead(
        id=uuid.uuid4(),
        org_id=resolved.org_id,
        contact_id=resolved.contact_id,
        property_id=property_id,
        kind=resolved.kind,
        status=LeadStatus.new,
        temperature="hot",
        source=signal.source.source,
        sub_source=signal.source.sub_source,
        latest_source=signal.source.source,
        preferred_tour_times=[],
        reached_rank=0,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(lead)  # written once, fully formed, at the flush
    return lead, True


def _update_lead(lead: Lead, signal: LeadSignal) -> None:
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
        "caller_name": signal.caller_name,
        "sub_source": signal.source.sub_source,
        "reply_to": signal.contact.reply_to,
        "preferences": signal.preferences.model_dump(mode="json", exclude_defaults=True),
        "external_ids": signal.external_ids,
        "match": {"verdict": match.verdict, "reasons": match.reasons, "contact_created": resolved.created},
    }
    return {key: value for key, value in data.items() if value not in (None, {}, [])}
