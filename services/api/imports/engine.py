"""The import engine: rows in chunks, each row through intake's normalization, matching and review rules.

Per chunk (one transaction in a real run; the whole dry run is one transaction rolled back, so a dry run
runs exactly the code of the real run and the two agree):
1. normalize every row (the manual-add rules: LeadCreate, identity_keys with the organization's blocklist);
2. skip rows already imported (their `row_key`, a hash of the mapped values, is in `import_rows`);
3. take the identity-key locks of the whole chunk in one statement (services/api/contacts/resolution.py),
   then read who owns the keys, their names, keep-apart pairs and open leads: four statements a chunk;
4. decide each row with the shared verdict (shared/matching.py, the intake worker's rule) against what the
   database holds plus what earlier rows of the file created, and apply it the way intake applies a
   signal: new renter → contact + lead; known renter → attached (their open lead for the property, else a
   new lead for them); a conflict → a review item (services/api/review/service.py), never a silent attach:
   a phone that belongs to someone with another name makes a new person without that phone, an email and a
   phone of two different people attach to the email's owner;
5. write set-based: contacts and identities as multi-row INSERTs, leads and timeline events through the ORM
   (events through `add_event`, so each has its outbox row), one INSERT of `import_rows`.
Imported leads are history: next-action rules and automation do not run for them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nameparser.config import CONSTANTS
from pydantic import ValidationError
from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.contacts.resolution import lock_identity_keys
from services.api.imports.presets import PRESETS, field_for
from services.api.imports.service import RowError, _describe, _lead_body, _owners, _properties
from services.api.leads.events import add_event, add_status_event
from services.api.leads.schemas import LeadCreate
from services.api.leads.status import apply_status
from services.api.review.service import DuplicateQuestion, open_duplicate_reviews
from shared import clock
from shared.blocklist import blocked_identities
from shared.enums import ContactKind, EventType, IdentityKind, LeadStatus, LostReason, MatchVerdict
from shared.errors import DomainError, ValidationFailed
from shared.identity import IdentityKeys, identity_keys
from shared.matching import decide, kept_apart_pair, name_needed_for
from shared.models import Contact, ContactIdentity, ImportRow, Lead
from shared.repositories.identities import prefer_email_owner
from shared.schemas.signal import SignalContact

CHUNK = 500  # rows per transaction: ≤ 1,000 identity-key locks, well inside the server's shared lock table
MAX_ROWS = 200_000
DETAILS_KEEP = 1000
OUTCOMES = ("created", "attached", "review", "rejected", "unchanged")
Key = tuple[str, str]
_NAME_WORDS = frozenset(
    word.lower()
    for words in (
        CONSTANTS.titles,
        CONSTANTS.prefixes,
        CONSTANTS.suffix_acronyms,
        CONSTANTS.suffix_not_acronyms,
        CONSTANTS.conjunctions,
    )
    for word in words
)


@dataclass
class ParsedFile:
    rows: list[dict[str, str]]
    ignored_columns: list[str]


def read_file(raw: bytes, preset: str, mapping: dict[str, str]) -> ParsedFile:
    """Decode (UTF-8 with or without BOM, else Latin-1), sniff the delimiter, map headers by preset/mapping."""
    if preset not in PRESETS:
        raise ValidationFailed(
            "Unknown preset.", errors=[{"field": "query.preset", "message": f"one of {sorted(PRESETS)}"}]
        )
    try:
        text_value = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text_value = raw.decode("latin-1")
    try:
        dialect: Any = csv.Sniffer().sniff(text_value[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    # newline="": the csv module reads line endings itself (a lone CR inside a field is data, not an error)
    reader = csv.reader(io.StringIO(text_value, newline=""), dialect)
    try:
        return _mapped(reader, preset, mapping)
    except csv.Error as error:  # e.g. a field over the csv module's size limit: bad input, not a 500
        raise ValidationFailed(
            "The file is not readable CSV.", errors=[{"field": "body", "message": str(error)}]
        ) from error


def _mapped(reader: Any, preset: str, mapping: dict[str, str]) -> ParsedFile:
    header = next(reader, None)
    if not header:
        raise ValidationFailed("The file is empty.", errors=[{"field": "body", "message": "no header row"}])
    fields = [field_for(name, preset, mapping) for name in header]
    if not any(name in ("email", "phone", "first_name", "last_name", "full_name") for name in fields):
        raise ValidationFailed(
            "No name, email or phone column found.",
            errors=[{"field": "body", "message": "map a column to first_name, last_name, full_name, email or phone"}],
        )
    ignored = [original for original, name in zip(header, fields, strict=True) if name is None]
    rows: list[dict[str, str]] = []
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        row: dict[str, str] = {}
        for name, value in zip(fields, values, strict=False):
            cleaned = value.strip()
            if name and cleaned:
                # our own export guards spreadsheet formulas with a leading quote; take it off again
                row[name] = cleaned[1:] if cleaned[:2] in ("'=", "'+", "'-", "'@") else cleaned
        rows.append(row)
        if len(rows) > MAX_ROWS:
            raise ValidationFailed(
                f"At most {MAX_ROWS} rows per import.", errors=[{"field": "body", "message": "too many rows"}]
            )
    return ParsedFile(rows, ignored)


@dataclass
class Plan:
    number: int
    key: str
    body: LeadCreate | None = None
    status: LeadStatus | None = None
    lost_reason: str | None = None
    notes: str | None = None
    keys: IdentityKeys = field(default_factory=IdentityKeys)
    errors: list[dict[str, Any]] | None = None


@dataclass
class Run:
    """What one import run knows across its chunks."""

    org_id: uuid.UUID
    batch_id: uuid.UUID
    user_id: uuid.UUID | None
    default_property_id: uuid.UUID | None
    properties: dict[str, uuid.UUID]
    owners: dict[str, uuid.UUID]
    blocked: frozenset[tuple[str, str]]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    errors: list[dict[str, Any]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    processed: int = 0

    def note(self, outcome: str, number: int, reasons: list[str] | None = None) -> None:
        self.counts[outcome] += 1
        if outcome != "created" and outcome != "rejected" and len(self.details) < DETAILS_KEEP:
            self.details.append({"row": number, "outcome": outcome, "reasons": reasons or []})


async def start_run(
    session: AsyncSession,
    org_id: uuid.UUID,
    batch_id: uuid.UUID,
    user_id: uuid.UUID | None,
    default_property_id: uuid.UUID | None,
) -> Run:
    return Run(
        org_id=org_id,
        batch_id=batch_id,
        user_id=user_id,
        default_property_id=default_property_id,
        properties=await _properties(session, org_id),
        owners=await _owners(session, org_id),
        blocked=await blocked_identities(session, org_id),
    )


def row_key(row: dict[str, str], default_property_id: uuid.UUID | None) -> str:
    material = json.dumps([sorted(row.items()), str(default_property_id or "")], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


def plan_row(run: Run, number: int, row: dict[str, str]) -> Plan:
    plan = Plan(number=number, key=row_key(row, run.default_property_id))
    row = _split_plain_name(row)
    try:
        body, status, notes = _lead_body(row, run.properties, run.owners, run.default_property_id)
        extras = _extras(row)
        if extras:
            body = LeadCreate.model_validate({**body.model_dump(exclude_unset=True), **extras})
        if not (body.first_name or body.last_name or body.email or body.phone):
            raise RowError("row", "a lead needs a name, an email or a phone")
    except (RowError, ValidationError, DomainError) as error:
        plan.errors = _describe(number, error)
        return plan
    plan.body, plan.status, plan.notes = body, status, notes
    if status == LeadStatus.lost:
        given = (row.get("lost_reason") or "").strip().lower().replace(" ", "_")
        plan.lost_reason = given if given in set(LostReason) else LostReason.other
    plan.keys = identity_keys(SignalContact(email=body.email, phone=body.phone), run.blocked)
    return plan


def _split_plain_name(row: dict[str, str]) -> dict[str, str]:
    """'Maria Gomez' → first/last without nameparser's full parse (a third of a row's cost), only where the
    parse could not differ: two plain words, neither a title, prefix, suffix or conjunction to nameparser."""
    full = row.get("full_name")
    if not full or "first_name" in row or "last_name" in row:
        return row
    words = full.split()
    if len(words) != 2 or not all(word.isalpha() for word in words):
        return row
    if any(word.lower() in _NAME_WORDS for word in words):
        return row
    return {**row, "first_name": words[0], "last_name": words[1]}


def _extras(row: dict[str, str]) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    for name in ("bathrooms", "lease_length_months", "occupants"):
        if name in row:
            try:
                number = float(row[name].split()[0].rstrip("+"))
            except ValueError as error:
                raise RowError(name, f"not a number: {row[name]!r}") from error
            extras[name] = number if name == "bathrooms" else int(number)
    return extras


@dataclass
class _Row:
    """One row's decision, applied after the chunk's contacts exist."""

    plan: Plan
    outcome: str
    reasons: list[str]
    contact_id: uuid.UUID
    contact_created: bool
    lead: Lead | None = None
    lead_created: bool = False
    claimed: list[Key] = field(default_factory=list)
    review_candidates: list[uuid.UUID] = field(default_factory=list)
    event_ids: list[uuid.UUID] = field(default_factory=list)
    review_item_id: uuid.UUID | None = None


_OWNERS_SQL = text(
    """
    SELECT ci.kind, ci.value, ci.contact_id, c.first_name, c.last_name
    FROM unnest(CAST(:kinds AS text[]), CAST(:values AS text[])) AS k(kind, value)
    JOIN contact_identities AS ci ON ci.org_id = :org_id AND ci.kind = k.kind AND ci.value = k.value
    JOIN contacts AS c ON c.id = ci.contact_id
    """
)
_PAIRS_SQL = text(
    """
    SELECT contact_low_id, contact_high_id FROM contact_pair_decisions
    WHERE org_id = :org_id
      AND (contact_low_id = ANY(CAST(:ids AS uuid[])) OR contact_high_id = ANY(CAST(:ids AS uuid[])))
    """
)


async def process_chunk(session: AsyncSession, run: Run, raw_rows: list[dict[str, str]], first_number: int) -> None:
    org_id = run.org_id
    now = clock.now()
    # one import at a time per organization: a second one waits, then sees the first one's row keys
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"import:{org_id}", 0))))
    plans = [plan_row(run, first_number + offset, row) for offset, row in enumerate(raw_rows)]
    done_before = set(
        await session.scalars(
            select(ImportRow.row_key).where(ImportRow.org_id == org_id, ImportRow.row_key.in_([p.key for p in plans]))
        )
    )
    todo: list[Plan] = []
    for plan in plans:
        if plan.key in done_before or plan.key in run.seen:
            run.note("unchanged", plan.number, ["this row was already imported"])
        elif plan.errors is not None:
            run.counts["rejected"] += 1
            run.errors.extend(plan.errors)
        else:
            run.seen.add(plan.key)
            todo.append(plan)
    run.processed += len(plans)
    if not todo:
        return

    wanted: list[Key] = sorted({key for plan in todo for key in plan.keys.usable})
    await lock_identity_keys(session, org_id, IdentityKeys(usable=wanted))
    owner_of: dict[Key, uuid.UUID] = {}
    names: dict[uuid.UUID, tuple[str | None, str | None]] = {}
    if wanted:
        rows = await session.execute(
            _OWNERS_SQL, {"org_id": org_id, "kinds": [k for k, _ in wanted], "values": [v for _, v in wanted]}
        )
        for kind, value, contact_id, first_name, last_name in rows:
            owner_of[(kind, value)] = contact_id
            names[contact_id] = (first_name, last_name)
    known = list(set(owner_of.values()))
    apart: set[frozenset[uuid.UUID]] = set()
    open_leads: dict[tuple[uuid.UUID, uuid.UUID | None], Lead] = {}
    if known:
        apart = {frozenset(pair) for pair in await session.execute(_PAIRS_SQL, {"org_id": org_id, "ids": known})}
        for lead in await session.scalars(
            select(Lead)
            .where(Lead.org_id == org_id, Lead.contact_id.in_(known))
            .where(Lead.status.notin_([LeadStatus.lost, LeadStatus.leased]))
            .with_for_update()
        ):
            open_leads[(lead.contact_id, lead.property_id)] = lead

    decided: list[_Row] = []
    new_contacts: list[dict[str, Any]] = []
    new_identities: list[dict[str, Any]] = []
    for plan in todo:
        assert plan.body is not None
        body = plan.body
        by_contact: dict[uuid.UUID, list[str]] = {}
        for key in plan.keys.usable:
            if key in owner_of:
                by_contact.setdefault(owner_of[key], []).append(key[0])
        for kinds in by_contact.values():
            kinds.sort()
        pair = kept_apart_pair(by_contact)
        needs = name_needed_for(by_contact, body.first_name)
        verdict = decide(
            plan.keys,
            by_contact,
            kept_apart=pair is not None and frozenset(pair) in apart,
            known_name=names.get(needs) if needs else None,
            first_name=body.first_name,
            last_name=body.last_name,
        )
        if verdict.verdict == MatchVerdict.new:
            contact_id = _new_contact(run, plan, plan.keys.usable, new_contacts, new_identities, now)
            for key in plan.keys.usable:
                owner_of[key] = contact_id
            names[contact_id] = (body.first_name, body.last_name)
            decided.append(_Row(plan, "created", verdict.reasons, contact_id, True))
        elif verdict.verdict == MatchVerdict.existing or verdict.contact_id is None:
            # a known renter, or email and phone of two different people (then: the email's owner + review)
            chosen = verdict.contact_id or prefer_email_owner(by_contact)
            assert chosen is not None
            unowned = [key for key in plan.keys.usable if key not in owner_of]
            for key in unowned:
                owner_of[key] = chosen
                new_identities.append(_identity(run, chosen, key, now))
            outcome = "attached" if verdict.verdict == MatchVerdict.existing else "review"
            row = _Row(plan, outcome, verdict.reasons, chosen, False, claimed=unowned)
            if outcome == "review":
                row.review_candidates = list(by_contact)
            decided.append(row)
        else:
            # same phone, another name: a new person who must not take the shared phone as identity
            keys = [key for key in plan.keys.usable if key[0] != IdentityKind.phone and key not in owner_of]
            contact_id = _new_contact(run, plan, keys, new_contacts, new_identities, now, phone=False)
            for key in keys:
                owner_of[key] = contact_id
            names[contact_id] = (body.first_name, body.last_name)
            row = _Row(plan, "review", verdict.reasons, contact_id, True)
            row.review_candidates = [candidate.contact_id for candidate in verdict.candidates]
            decided.append(row)

    if new_contacts:
        await session.execute(insert(Contact), new_contacts)
    if new_identities:
        await session.execute(
            pg_insert(ContactIdentity).on_conflict_do_nothing(index_elements=["org_id", "kind", "value"]),
            new_identities,
        )
    for row in decided:
        _apply(session, run, row, open_leads, now)
    await session.flush()
    asking = [row for row in decided if row.review_candidates]
    answers = await open_duplicate_reviews(
        session,
        org_id,
        [
            DuplicateQuestion(row.contact_id, row.lead.id, row.review_candidates, row.reasons)
            for row in asking
            if row.lead is not None
        ],
    )
    for row, review_item_id in zip(asking, answers, strict=True):
        assert row.lead is not None
        row.review_item_id = review_item_id
        if review_item_id is not None:
            event = add_event(
                session,
                row.lead,
                EventType.match,
                occurred_at=now,
                source="import",
                data={"review_item_id": str(review_item_id), "reasons": row.reasons, "import_id": str(run.batch_id)},
            )
            row.event_ids.append(event.id)
    for row in decided:
        run.note(row.outcome, row.plan.number, row.reasons)
    await session.execute(
        insert(ImportRow),
        [
            {
                "id": uuid.uuid4(),
                "org_id": org_id,
                "batch_id": run.batch_id,
                "row_number": row.plan.number,
                "row_key": row.plan.key,
                "outcome": row.outcome,
                "contact_id": row.contact_id,
                "lead_id": row.lead.id if row.lead else None,
                "contact_created": row.contact_created,
                "lead_created": row.lead_created,
                "event_ids": [] if row.lead_created else row.event_ids,
                "claimed": [list(key) for key in row.claimed],
                "review_item_id": row.review_item_id,
            }
            for row in decided
        ],
    )


def _identity(run: Run, contact_id: uuid.UUID, key: Key, now: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "org_id": run.org_id,
        "contact_id": contact_id,
        "kind": key[0],
        "value": key[1],
        "source": "import",
        "created_at": now,
        "updated_at": now,
    }


def _new_contact(
    run: Run,
    plan: Plan,
    keys: list[Key],
    contacts: list[dict[str, Any]],
    identities: list[dict[str, Any]],
    now: Any,
    phone: bool = True,
) -> uuid.UUID:
    body = plan.body
    assert body is not None
    contact_id = uuid.uuid4()
    contacts.append(
        {
            "id": contact_id,
            "org_id": run.org_id,
            "kind": body.kind or ContactKind.tenant,
            "full_name": " ".join(part for part in (body.first_name, body.last_name) if part) or None,
            "first_name": body.first_name,
            "last_name": body.last_name,
            "primary_email": next((v for k, v in keys if k == IdentityKind.email), None),
            "primary_phone": body.phone if phone else None,
            "sms_consent": "unknown",
            "email_consent": "unknown",
            "created_at": now,
            "updated_at": now,
        }
    )
    identities.extend(_identity(run, contact_id, key, now) for key in keys)
    return contact_id


def _apply(
    session: AsyncSession, run: Run, row: _Row, open_leads: dict[tuple[uuid.UUID, uuid.UUID | None], Lead], now: Any
) -> None:
    plan, body = row.plan, row.plan.body
    assert body is not None
    actor: dict[str, Any] = {"actor_type": "user", "actor_id": run.user_id, "source": "import", "occurred_at": now}
    stamp = {"import_id": str(run.batch_id), "row": plan.number}
    existing = open_leads.get((row.contact_id, body.property_id))
    if existing is not None:
        row.lead = existing
    else:
        source = body.source or "import"
        lead = Lead(
            id=uuid.uuid4(),
            org_id=run.org_id,
            contact_id=row.contact_id,
            property_id=body.property_id,
            kind=body.kind or ContactKind.tenant,
            status=LeadStatus.new,
            temperature="hot",
            source=source,
            sub_source=body.sub_source,
            latest_source=source,
            owner_id=body.owner_id,
            move_in_date=body.move_in_date,
            move_in_text=body.move_in_text,
            bedrooms=body.bedrooms,
            bathrooms=body.bathrooms,
            budget_min=body.budget_min,
            budget_max=body.budget_max,
            pets=body.pets,
            pets_text=body.pets_text,
            unit_type=body.unit_type,
            lease_length_months=body.lease_length_months,
            occupants=body.occupants,
            preferred_tour_times=[],
            reached_rank=0,
            version=1,
            created_at=now,
            updated_at=now,
        )
        session.add(lead)
        row.lead, row.lead_created = lead, True
        add_event(session, lead, EventType.created, data={**stamp, "imported": True}, **actor)
        if plan.status is not None and plan.status != LeadStatus.new:
            previous = apply_status(lead, plan.status, now, plan.lost_reason)
            if plan.status == LeadStatus.lost:
                lead.lost_reason = plan.lost_reason
            add_status_event(
                session,
                lead,
                previous,
                occurred_at=now,
                actor_type="user",
                actor_id=run.user_id,
                reason="imported",
                source="import",
            )
        if lead.status not in (LeadStatus.lost, LeadStatus.leased):
            open_leads[(row.contact_id, body.property_id)] = lead
    if plan.notes:
        event = add_event(session, row.lead, EventType.note, data={**stamp, "body": plan.notes[:5000]}, **actor)
        row.event_ids.append(event.id)


Progress = Callable[[Run, int], Awaitable[None]]
