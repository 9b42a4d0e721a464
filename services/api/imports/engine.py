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
5. write set-based, one statement per table: COPY for contacts, leads, timeline events (with the stream rows
   `add_event` would add), import rows; identities as INSERT … ON CONFLICT DO NOTHING, before the new
   contacts they name (deferred foreign key: each contact's search_text is computed once); review items as
   rows the review service decides (services/api/review/service.py::duplicate_review_rows), COPYed too.
   Step 1 of the next chunk runs in a planning process meanwhile (`planned_chunks`).
Imported leads are history: next-action rules and automation do not run for them.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import hashlib
import io
import json
import multiprocessing
import os
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import itemgetter
from typing import Any

from asyncpg.pgproto.pgproto import UUID as FastUUID
from nameparser.config import CONSTANTS
from pydantic import ValidationError
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.contacts.resolution import lock_identity_keys
from services.api.imports.presets import PRESETS, field_for
from services.api.imports.service import RowError, _describe, _lead_body, _owners, _properties
from services.api.leads.schemas import LeadCreate
from services.api.leads.status import apply_status
from services.api.review.service import DuplicateQuestion, duplicate_review_rows
from services.api.webhooks.outbox import timeline_stream_rows
from shared import clock
from shared.blocklist import blocked_identities
from shared.enums import ContactKind, EventType, IdentityKind, LeadStatus, LostReason, MatchVerdict
from shared.errors import DomainError, ValidationFailed
from shared.identity import IdentityKeys, identity_keys
from shared.matching import decide, kept_apart_pair, name_needed_for
from shared.models import Contact, ContactIdentity, ImportRow, Lead, LeadEvent, ReviewItem, StreamEvent
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


class _RandomIds:
    """Version 4 UUIDs from one urandom call per 4,096 ids: `uuid.uuid4()` makes a system call per id, which
    was ~10 % of the main thread's time in an import (five ids a row). Same randomness source, same format
    (the version and variant bits set as `uuid4` sets them), built as asyncpg's C UUID (a `uuid.UUID`, what
    the driver returns for every uuid column), ~15× cheaper to make than `uuid.UUID(bytes=…)`.
    A forked child drops the parent's unused bytes (else both would hand out the same ids)."""

    def __init__(self) -> None:
        self._block = b""
        self._at = 0

    def reset(self) -> None:
        self._block, self._at = b"", 0

    def __call__(self) -> uuid.UUID:
        if self._at >= len(self._block):
            block = bytearray(os.urandom(16 * 4096))
            block[6::16] = bytes(byte & 0x0F | 0x40 for byte in block[6::16])  # version 4
            block[8::16] = bytes(byte & 0x3F | 0x80 for byte in block[8::16])  # RFC 4122 variant
            self._block, self._at = bytes(block), 0
        start = self._at
        self._at += 16
        return FastUUID(self._block[start : start + 16])


_new_id = _RandomIds()  # main thread only (the planning thread makes no ids)
os.register_at_fork(after_in_child=_new_id.reset)


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
    # from the raw values LeadCreate just normalized: the memoized normalizers answer without a second parse
    # (the keys are the same: normalizing a normalized value changes nothing)
    raw_email, raw_phone = (row.get("email") if body.email else None), (row.get("phone") if body.phone else None)
    plan.keys = identity_keys(SignalContact(email=raw_email, phone=raw_phone), run.blocked)
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


@dataclass(slots=True)
class LeadRef:
    """What a timeline row needs of a lead; the chunk's leads are written as Core rows, not ORM objects."""

    id: uuid.UUID
    org_id: uuid.UUID
    contact_id: uuid.UUID
    property_id: uuid.UUID | None


@dataclass
class _Writes:
    """The chunk's rows, each table written with one multi-row INSERT."""

    leads: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Row:
    """One row's decision, applied after the chunk's contacts exist."""

    plan: Plan
    outcome: str
    reasons: list[str]
    contact_id: uuid.UUID
    contact_created: bool
    lead: LeadRef | None = None
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
# one array parameter, not an IN list of 500: the same statement text every chunk (asyncpg prepares it once)
# and a short plan, where an expanded IN list is a new statement to parse and plan for every chunk size
_DONE_SQL = text(
    """
    SELECT r.row_key FROM unnest(CAST(:keys AS text[])) AS k(row_key)
    JOIN import_rows AS r ON r.org_id = :org_id AND r.row_key = k.row_key
    """
)
_OPEN_LEADS_SQL = text(
    """
    SELECT id, contact_id, property_id FROM leads
    WHERE org_id = :org_id AND contact_id = ANY(CAST(:ids AS uuid[])) AND status NOT IN ('lost', 'leased')
    FOR UPDATE
    """
)
_DEFER_IDENTITY_FK = text("SET CONSTRAINTS fk_contact_identities_contact_id_contacts DEFERRED")
_PAIRS_SQL = text(
    """
    SELECT contact_low_id, contact_high_id FROM contact_pair_decisions
    WHERE org_id = :org_id
      AND (contact_low_id = ANY(CAST(:ids AS uuid[])) OR contact_high_id = ANY(CAST(:ids AS uuid[])))
    """
)


def plan_chunk(run: Run, raw_rows: list[dict[str, str]], first_number: int) -> list[Plan]:
    """Normalize a chunk's rows: pure CPU on what the run read at its start, so it may run in a thread."""
    return [plan_row(run, first_number + offset, row) for offset, row in enumerate(raw_rows)]


_planner: ProcessPoolExecutor | None = None


def _planning_process() -> ProcessPoolExecutor:
    """One long-lived process that normalizes chunks (started on first use, kept for the next imports).

    A thread shared the GIL with the main thread: every time the main thread came back from the database it
    waited for the planning thread's switch interval (5 ms), a dozen statements a chunk. A process leaves the
    main thread the GIL. forkserver, not fork: this process has threads (the default executor, arq's).
    """
    global _planner
    if _planner is None:
        _planner = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver"))
    return _planner


def _drop_planning_process() -> None:
    global _planner
    if _planner is not None:
        _planner.shutdown(wait=False, cancel_futures=True)
        _planner = None


def _rules(run: Run) -> Run:
    """What planning reads of a run (sent to the planning process): its settings, not its growing tallies."""
    return replace(run, counts={}, errors=[], details=[], seen=set())


def plan_chunk_at(run: Run, raw_rows: list[dict[str, str]], first_number: int, now: datetime) -> list[Plan]:
    """`plan_chunk` in the planning process, reading the caller's time (a test's FakeClock included)."""
    with clock.use_clock(clock.FakeClock(now)), _gc_paused():
        return plan_chunk(run, raw_rows, first_number)


async def _plan_elsewhere(run: Run, chunk: list[dict[str, str]], first_number: int) -> list[Plan]:
    loop = asyncio.get_running_loop()
    try:
        pool = _planning_process()
        return await loop.run_in_executor(pool, plan_chunk_at, _rules(run), chunk, first_number, clock.now())
    except BrokenProcessPool:
        _drop_planning_process()  # a killed planner: this chunk in a thread, a new process next time
        return await asyncio.to_thread(plan_chunk, run, chunk, first_number)


async def planned_chunks(
    run: Run, chunks: list[list[dict[str, str]]], first_number: int, size: int
) -> AsyncGenerator[list[Plan], None]:
    """Each chunk's plans, the next chunk normalized in the planning process while the caller writes this
    one: the database works on one core while Python normalizes on the other."""
    pending: asyncio.Future[list[Plan]] | None = None
    try:
        for index, chunk in enumerate(chunks):
            plans = await pending if pending is not None else plan_chunk(run, chunk, first_number + index * size)
            pending = None
            if index + 1 < len(chunks):
                start = first_number + (index + 1) * size
                pending = asyncio.ensure_future(_plan_elsewhere(run, chunks[index + 1], start))
            yield plans
    finally:
        if pending is not None:
            await asyncio.wait([pending])  # never leave a planner working for a run that is over


_gc_pauses = 0


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No automatic cyclic GC while a chunk is decided and written (reference counting still frees almost
    everything: the chunk's rows are plain dicts and tuples). With the run's tens of thousands of live
    objects, CPython's collector (a pass every 700 allocations) re-scanned them while each chunk built its
    ~50,000 values: 15–30 % of the main thread. Collection resumes between chunks; nested or concurrent
    imports in one process share the pause (a count, the last one out re-enables)."""
    global _gc_pauses
    if _gc_pauses == 0 and not gc.isenabled():
        yield  # someone else turned the collector off: leave it as it is
        return
    _gc_pauses += 1
    gc.disable()
    try:
        yield
    finally:
        _gc_pauses -= 1
        if _gc_pauses == 0:
            gc.enable()


async def process_chunk(session: AsyncSession, run: Run, plans: list[Plan]) -> None:
    with _gc_paused():
        await _process_chunk(session, run, plans)


async def _process_chunk(session: AsyncSession, run: Run, plans: list[Plan]) -> None:
    org_id = run.org_id
    now = clock.now()
    # one import at a time per organization: a second one waits, then sees the first one's row keys
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"import:{org_id}", 0))))
    done_before = set(await session.scalars(_DONE_SQL, {"org_id": org_id, "keys": [plan.key for plan in plans]}))
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
    open_leads: dict[tuple[uuid.UUID, uuid.UUID | None], LeadRef] = {}
    if known:
        apart = {frozenset(pair) for pair in await session.execute(_PAIRS_SQL, {"org_id": org_id, "ids": known})}
        for lead_id, contact_id, property_id in await session.execute(
            _OPEN_LEADS_SQL, {"org_id": org_id, "ids": known}
        ):
            open_leads[(contact_id, property_id)] = LeadRef(lead_id, org_id, contact_id, property_id)

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

    # identities first, their new contacts after (the foreign key is deferrable, checked at commit): the
    # identities trigger finds no new contact to update and the contacts row trigger computes search_text
    # once, from the identities already there, instead of an INSERT and then an UPDATE of every new contact
    if new_contacts:
        await session.execute(_DEFER_IDENTITY_FK)
    if new_identities:
        await _write(session, ContactIdentity, new_identities, skip_conflicts=("org_id", "kind", "value"))
    if new_contacts:
        await _write(session, Contact, new_contacts)
    writes = _Writes()
    for row in decided:
        _apply(run, row, open_leads, now, writes)
    if writes.leads:
        await _write(session, Lead, writes.leads)
    asking = [row for row in decided if row.review_candidates]
    reviews = await duplicate_review_rows(
        session,
        org_id,
        [
            DuplicateQuestion(row.contact_id, row.lead.id, row.review_candidates, row.reasons)
            for row in asking
            if row.lead is not None
        ],
        now,
        _new_id,
    )
    if reviews.items:
        await _write(session, ReviewItem, reviews.items)
    for row, review_item_id in zip(asking, reviews.answers, strict=True):
        assert row.lead is not None
        row.review_item_id = review_item_id
        if review_item_id is not None:
            data = {"review_item_id": str(review_item_id), "reasons": row.reasons, "import_id": str(run.batch_id)}
            row.event_ids.append(_event(writes, row.lead, EventType.match, now, data, source="import"))
    if writes.events:
        await _write(session, LeadEvent, writes.events)
    # the review items' events first, as when the review service flushed them before the timeline was written
    streams = reviews.stream + (timeline_stream_rows(session, writes.events) if writes.events else [])
    if streams:
        await _write(session, StreamEvent, streams)
    for row in decided:
        run.note(row.outcome, row.plan.number, row.reasons)
    await _write(
        session,
        ImportRow,
        [
            {
                "id": _new_id(),
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


async def _write(
    session: AsyncSession, model: Any, rows: list[dict[str, Any]], skip_conflicts: tuple[str, ...] = ()
) -> None:
    """Write a chunk's rows of one table, in the chunk's transaction.

    COPY on the session's own connection: it skips SQL parameters altogether (a 500-row VALUES statement
    has ~15,000 of them to render, bind and plan) and fires the same triggers, row and statement level, as an
    INSERT. Values go through each column's SQLAlchemy bind processor first, so JSON and custom types are
    serialized exactly as an INSERT would. A write that must skip conflicts (identities) stays an INSERT …
    ON CONFLICT DO NOTHING, RETURNING so SQLAlchemy batches it into multi-row VALUES: without it asyncpg
    runs one statement per row, and every statement fires the statement triggers (search_text) again.
    """
    if not rows:
        return
    table = model.__table__
    if skip_conflicts:
        statement = pg_insert(table).on_conflict_do_nothing(index_elements=list(skip_conflicts))
        await session.execute(statement.returning(table.c.id), rows)
        return
    connection = await session.connection()
    dialect = connection.dialect
    given = list(rows[0])
    columns = [table.c[name] for name in given]
    filled: dict[str, Any] = {}  # Python-side defaults: an INSERT would compute them, COPY must be told
    for column in table.columns:
        default = column.default
        if column.name in rows[0] or default is None:
            continue
        if getattr(default, "is_scalar", False):
            filled[column.name] = default.arg  # type: ignore[attr-defined]
        elif getattr(default, "is_callable", False):
            filled[column.name] = default.arg(None)  # type: ignore[attr-defined]
    columns += [table.c[name] for name in filled]
    processors = [
        (index, processor)
        for index, column in enumerate(columns)
        if (processor := column.type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    fixed = list(filled.values())
    pick = itemgetter(*given)
    records = []
    for row in rows:
        values = [*pick(row), *fixed] if len(given) > 1 else [row[given[0]], *fixed]
        for index, processor in processors:
            if values[index] is not None:
                values[index] = processor(values[index])
        records.append(tuple(values))
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.copy_records_to_table(table.name, records=records, columns=[column.name for column in columns])


def _identity(run: Run, contact_id: uuid.UUID, key: Key, now: Any) -> dict[str, Any]:
    return {
        "id": _new_id(),
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
    contact_id = _new_id()
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


_NEW_LEAD_DEFAULTS: dict[str, Any] = {
    "status": LeadStatus.new,
    "temperature": "hot",
    "preferred_tour_times": [],
    "reached_rank": 0,
    "version": 1,
    "lost_reason": None,
    "lost_reason_text": None,
    "closed_at": None,
    "next_action_type": None,
    "next_action_due_at": None,
}
_STATUS_FIELDS = tuple(_NEW_LEAD_DEFAULTS)


def _lead_values(run: Run, row: _Row, body: LeadCreate, now: Any) -> dict[str, Any]:
    """A new lead as Core values, every row with the same keys (one multi-row INSERT)."""
    source = body.source or "import"
    values: dict[str, Any] = {
        **_NEW_LEAD_DEFAULTS,
        "id": _new_id(),
        "org_id": run.org_id,
        "contact_id": row.contact_id,
        "property_id": body.property_id,
        "kind": body.kind or ContactKind.tenant,
        "source": source,
        "sub_source": body.sub_source,
        "latest_source": source,
        "owner_id": body.owner_id,
        "move_in_date": body.move_in_date,
        "move_in_text": body.move_in_text,
        "bedrooms": body.bedrooms,
        "bathrooms": body.bathrooms,
        "budget_min": body.budget_min,
        "budget_max": body.budget_max,
        "pets": body.pets,
        "pets_text": body.pets_text,
        "unit_type": body.unit_type,
        "lease_length_months": body.lease_length_months,
        "occupants": body.occupants,
        "created_at": now,
        "updated_at": now,
    }
    return values


def _event(
    writes: _Writes,
    lead: LeadRef,
    type: str,
    now: Any,
    data: dict[str, Any],
    *,
    actor_type: str = "system",
    actor_id: uuid.UUID | None = None,
    source: str | None = None,
) -> uuid.UUID:
    """One timeline row, as `add_event` writes it (its stream row follows from it when the chunk is written)."""
    event_id = _new_id()
    writes.events.append(
        {
            "id": event_id,
            "org_id": lead.org_id,
            "lead_id": lead.id,
            "contact_id": lead.contact_id,
            "type": type,
            "occurred_at": now,
            "actor_type": actor_type,
            "actor_id": actor_id,
            "source": source,
            "channel": None,
            "property_id": lead.property_id,
            "inbound_id": None,
            "data": data,
        }
    )
    return event_id


def _apply(
    run: Run, row: _Row, open_leads: dict[tuple[uuid.UUID, uuid.UUID | None], LeadRef], now: Any, writes: _Writes
) -> None:
    plan, body = row.plan, row.plan.body
    assert body is not None
    actor: dict[str, Any] = {"actor_type": "user", "actor_id": run.user_id, "source": "import"}
    stamp = {"import_id": str(run.batch_id), "row": plan.number}
    existing = open_leads.get((row.contact_id, body.property_id))
    if existing is not None:
        row.lead = existing
    else:
        values = _lead_values(run, row, body, now)
        lead = LeadRef(values["id"], run.org_id, row.contact_id, body.property_id)
        row.lead, row.lead_created = lead, True
        writes.leads.append(values)
        _event(writes, lead, EventType.created, now, {**stamp, "imported": True}, **actor)
        if plan.status is not None and plan.status != LeadStatus.new:
            # the pipeline's own rule on a transient lead (never added to the session), copied back to the values
            transient = Lead(**{key: values[key] for key in _STATUS_FIELDS})
            previous = apply_status(transient, plan.status, now, plan.lost_reason)
            if plan.status == LeadStatus.lost:
                transient.lost_reason = plan.lost_reason
            values.update({key: getattr(transient, key) for key in _STATUS_FIELDS})
            data = {"from": str(previous), "to": str(transient.status), "reason": "imported", "cause": None}
            _event(writes, lead, "status_changed", now, data, **actor)
        if values["status"] not in (LeadStatus.lost, LeadStatus.leased):
            open_leads[(row.contact_id, body.property_id)] = lead
    if plan.notes:
        assert row.lead is not None
        row.event_ids.append(
            _event(writes, row.lead, EventType.note, now, {**stamp, "body": plan.notes[:5000]}, **actor)
        )


Progress = Callable[[Run, int], Awaitable[None]]
