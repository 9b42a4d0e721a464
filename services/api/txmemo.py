"""What one intake batch transaction reads or locks once instead of once per signal (issue #16).

A batch of signals (services/api/signals/batch.py) applies many renters' touches in one transaction, and
most of what each signal reads is the organization's configuration: assignment settings, the owner pool,
the timezone, the rule book, who watches new leads, notification preferences, messaging settings. Nothing
a signal does changes those, so inside a batch they are read once. Outside a batch (any other request or job)
nothing is memoized: the helpers call straight through, so a request that edits configuration and then acts
on it in the same transaction always reads what it wrote.

Configuration is also kept across batches while the organization's configuration number stays the same
(`read_config_versions`, `remember_config`, services/api/configcache.py).

Advisory locks are remembered too: a transaction-scoped lock taken once is held to the end of the
transaction, so taking it again is a wasted round trip. Locks taken inside a signal's savepoint are released
by PostgreSQL when that savepoint rolls back, so the batch forgets them then (`signal_scope`).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import configcache
from shared.models.base import Base
from shared.repositories import driver
from shared.repositories.rows import full_row, insert_statement

MEMO_KEY = "txmemo.batch"
LOCKS = "locks"
T = TypeVar("T")

LOCK_SQL = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, :space))")


@contextmanager
def batch_scope(session: AsyncSession) -> Iterator[None]:
    """Memoize for the rest of this transaction (the caller owns it and ends it after the scope)."""
    session.info[MEMO_KEY] = {LOCKS: set()}
    try:
        yield
    finally:
        session.info.pop(MEMO_KEY, None)


@contextmanager
def signal_scope(session: AsyncSession) -> Iterator[None]:
    """One signal's savepoint: on failure its locks are gone (rolled back with it), and what it left for the
    end of the batch (`deferred`) must not be written, so the memo goes back to how the signal found it."""
    memo = _memo(session)
    before = _copied(memo) if memo is not None else None
    try:
        yield
    except BaseException:
        if before is not None:
            session.info[MEMO_KEY] = before
        raise


def _copied(memo: dict[Hashable, Any]) -> dict[Hashable, Any]:
    """The memo with its locks and slots copied (values read from the database are kept as they are)."""
    return {key: copy.copy(value) if isinstance(value, dict | set) else value for key, value in memo.items()}


def snapshot(session: AsyncSession) -> dict[Hashable, Any] | None:
    """The batch's memo as it is now, for `restore` after a rolled-back attempt."""
    memo = _memo(session)
    return None if memo is None else _copied(memo)


def restore(session: AsyncSession, saved: dict[Hashable, Any] | None) -> None:
    """Put back a `snapshot`: what an attempt decided or locked inside its rolled-back savepoint is forgotten."""
    if saved is not None:
        session.info[MEMO_KEY] = _copied(saved)


def in_batch(session: AsyncSession) -> bool:
    return _memo(session) is not None


def _memo(session: AsyncSession) -> dict[Hashable, Any] | None:
    memo: dict[Hashable, Any] | None = session.info.get(MEMO_KEY)
    return memo


async def remember(session: AsyncSession, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """`load()` once per batch for this key; every call outside a batch loads."""
    return await remember_config(session, None, key, load)


CONFIG_VERSIONS = "config_versions"


async def read_config_versions(session: AsyncSession, org_ids: Iterable[Any]) -> None:
    """At the start of a batch: the organizations' configuration numbers, under which `remember_config` finds
    what earlier batches read (one statement)."""
    memo = _memo(session)
    if memo is not None:
        memo[CONFIG_VERSIONS] = await configcache.read_versions(session, org_ids)


async def remember_config(session: AsyncSession, org_id: Any, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """`load()` once per batch for this key (every call outside a batch loads); and when the value is `org_id`'s
    configuration (None: this batch only), a value an earlier batch read under the organization's number read by
    this batch is taken instead of loading it (it must be plain data or `configcache.detached_copy` rows: batches
    share it)."""
    memo = _memo(session)
    if memo is None:
        return await load()
    if key in memo:
        value: T = memo[key]
        return value
    version = memo.get(CONFIG_VERSIONS, {}).get(org_id)
    if version is not None:
        found, kept = configcache.CACHE.get(org_id, version, key)
        if found:
            memo[key] = kept
            return kept  # type: ignore[no-any-return]
    value = await load()
    memo[key] = value
    if version is not None:
        configcache.CACHE.put(org_id, version, key, value)
    return value


def slot(session: AsyncSession, key: Hashable) -> dict[Hashable, Any] | None:
    """A dict kept for the rest of the batch under `key` (None outside a batch: the caller reads the database)."""
    return slot_of(session.info, key)


def slot_of(info: dict[Any, Any], key: Hashable) -> dict[Hashable, Any] | None:
    """`slot`, from a session's `info` (the sync session's, in a flush event, is the same dict)."""
    memo: dict[Hashable, Any] | None = info.get(MEMO_KEY)
    if memo is None:
        return None
    found: dict[Hashable, Any] = memo.setdefault(("slot", key), {})
    return found


def defer(session: AsyncSession, name: str) -> None:
    """Inside this batch, writes of `name` wait for its end: the caller collects them with `deferred` and the
    batch writes them all at once (no-op outside a batch)."""
    memo = _memo(session)
    if memo is not None:
        memo[("defer", name)] = True


def undefer(session: AsyncSession, name: str) -> None:
    """Writes of `name` go straight to the session again for the rest of the batch."""
    memo = _memo(session)
    if memo is not None:
        memo.pop(("defer", name), None)


def deferred(session: AsyncSession, name: str) -> dict[Hashable, Any] | None:
    """The batch's pending `name` writes, keyed for dedup, when the batch defers them; None: write now."""
    memo = _memo(session)
    if memo is None or not memo.get(("defer", name)):
        return None
    return slot(session, ("defer", name))


NEW_RENTERS = "new_renters"
PENDING_CONTACTS = "contacts.pending"  # contacts.resolution.insert_contact: new renters waiting for the flush


async def write_pending_contacts(session: AsyncSession) -> None:
    """Before a statement that reads identities or points at a renter by SQL: the renters this batch created so
    far, written now (they wait for the batch's next flush otherwise, with their identities)."""
    if slot(session, PENDING_CONTACTS):
        await session.flush()


def note_new_renter(session: AsyncSession, contact_id: Any) -> None:
    """This batch created the renter: nothing of theirs existed before it (no earlier lead, owner or decision)."""
    created = slot(session, NEW_RENTERS)
    if created is not None:
        created[contact_id] = True


def is_new_renter(session: AsyncSession, contact_id: Any) -> bool:
    created = slot(session, NEW_RENTERS)
    return created is not None and contact_id in created


KEYED_ROWS = "keyed_rows"
TOUCHED = "contacts_touched"


def pending_keyed(session: AsyncSession) -> dict[Hashable, Any] | None:
    """Rows written once per idempotency key (outbound messages, scheduled steps) that this batch adds to the
    session instead of inserting at once, keyed by (table, org, key); None: insert now, ON CONFLICT DO NOTHING.

    The batch's savepoint flushes them with everything else (one INSERT per table). A later signal of the same
    batch that decides the same key finds the pending row here, as the ON CONFLICT would have found it; one that
    reads or updates a renter's rows flushes first (`flush_if_touched`). Only the batch's single savepoint defers:
    if that flush meets a row another transaction wrote, the batch is applied again one signal at a time, where
    every row is inserted at once and a conflict is the no-op it always was."""
    return deferred(session, KEYED_ROWS)


async def flush_if_touched(session: AsyncSession, contact_id: Any) -> None:
    """Before a signal reads its renter's lead, steps or messages: if an earlier signal of this batch touched
    the same renter, write what it left pending, so the reads and updates see it (the session does not
    autoflush). Renters seen once per batch, nearly all of them, cost nothing."""
    seen = slot(session, TOUCHED)
    if seen is None:
        return
    if contact_id in seen:
        await write_appended(session)
    seen[contact_id] = True


APPEND_ROWS = "append_rows"


def append_row(session: AsyncSession, model: type[Base], values: dict[str, Any]) -> bool:
    """Rows nothing updates and nothing later in the batch reads unless it flushes first (timeline events,
    automation-log entries, stream events): in the batch's single savepoint (`defer(session, APPEND_ROWS)`)
    they are kept as plain values and written at the batch's end with one INSERT per table, instead of being
    built, added and flushed as ORM objects (about a fifth of the applier's CPU per signal, issue #16). True:
    kept; False: not in such a batch, the caller adds the ORM object as usual.

    `values` carries its "id". What reads them inside a batch flushes with `write_appended`, which writes
    them after the ORM's pending rows (the leads and renters they point at)."""
    pending = deferred(session, APPEND_ROWS)
    if pending is None:
        return False
    pending[values["id"]] = (model, values)
    return True


async def write_appended(session: AsyncSession) -> None:
    """Flush the session, then write the rows `append_row` kept: one INSERT per table, executemany."""
    await session.flush()
    pending = deferred(session, APPEND_ROWS)
    if not pending:
        return
    groups: dict[tuple[type[Base], tuple[str, ...]], list[dict[str, Any]]] = {}
    for model, values in pending.values():
        row = full_row(model, values)
        groups.setdefault((model, tuple(row)), []).append(row)
    pending.clear()
    for (model, _), rows in groups.items():
        table = model.__table__
        if not await driver.insert_rows(session, table, rows):  # type: ignore[arg-type]
            await session.execute(insert_statement(table), rows)  # type: ignore[arg-type]


DEFER_LEAD_REFERENCES_SQL = text("SET CONSTRAINTS ALL DEFERRED")
DEFERRED = "lead_references_deferred"


async def defer_lead_references(session: AsyncSession) -> None:
    """Check the foreign keys to leads (all DEFERRABLE, migration d18l) at commit, for the rest of the
    transaction: rows pointing at a new lead may then be written before it, and the lead is written once,
    with its next action, instead of being flushed early and updated later."""
    memo = _memo(session)
    if memo is not None:
        await session.execute(DEFER_LEAD_REFERENCES_SQL)
        memo[DEFERRED] = True


def lead_references_deferred(session: AsyncSession) -> bool:
    """True inside a batch that deferred them: a new lead need not be flushed before what points at it."""
    memo = _memo(session)
    return memo is not None and bool(memo.get(DEFERRED))


async def flush_before_references(session: AsyncSession) -> None:
    """Write pending rows (a new lead) before a Core statement that points at them, unless the references
    are checked at commit (`defer_lead_references`): then the batch's one flush writes them."""
    if not lead_references_deferred(session):
        await session.flush()


def note_locks(session: AsyncSession, space: int, names: Iterable[str]) -> None:
    """Locks the caller just took (in `space`, the hashtextextended seed), held to the end of the transaction."""
    memo = _memo(session)
    if memo is not None:
        memo[LOCKS].update((space, name) for name in names)


def holds_locks(session: AsyncSession, space: int, names: Iterable[str]) -> bool:
    memo = _memo(session)
    return memo is not None and all((space, name) in memo[LOCKS] for name in names)


async def advisory_lock(session: AsyncSession, name: str, space: int = 0) -> None:
    """pg_advisory_xact_lock(hashtextextended(name, space)), skipped when this batch already holds it."""
    if holds_locks(session, space, [name]):
        return
    await session.execute(LOCK_SQL, {"name": name, "space": space})
    note_locks(session, space, [name])
