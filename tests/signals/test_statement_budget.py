"""The intake batch's statement budget (#16): what one signal costs in round trips, and what a batch reads once.

Counted, not timed: every statement the API sends while applying a batch of new renters' tour requests (the
costliest common touch: contact, lead, first reply, task, follow-up, staff notification). A change that
reads organization configuration per signal again, or takes a lock twice, fails here.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import txmemo
from shared.models import Notification, OutboundMessage
from shared.repositories import driver
from tests.conftest import OrgFixture
from tests.signals.helpers import SERVICE_HEADERS, envelope

BATCH = 10
# 45 before the batch memo (session 4); 19.5 then; 13.0 with one savepoint per batch, owners and consent read
# once, and the lead written once (references to it checked at commit); 7.6 with one ORM flush per batch; 5.8
# with the staff notifications and their emails written once at the end of the batch; 4.0 with the first replies
# and follow-up steps flushed with the batch (only the contact and its identities stay one statement per renter);
# 2.8 with the organization's configuration kept across batches while its number is unchanged (configcache.py);
# 2.0 with the new renters written with the batch's flush: nothing is one statement per renter any more
PER_SIGNAL_BUDGET = 2.4
READ_ONCE = ("assignment_settings", "automation_rule_sets", "messaging_settings", "notification_preferences")


@contextmanager
def counting() -> Iterator[list[str]]:
    seen: list[str] = []

    def hook(*args: Any) -> None:
        seen.append(args[2])  # (conn, cursor, statement, parameters, context, executemany)

    event.listen(Engine, "before_cursor_execute", hook)
    driver.OBSERVERS.append(seen.append)  # the statements sent straight to asyncpg count the same
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", hook)
        driver.OBSERVERS.remove(seen.append)


def tour_requests(org: OrgFixture, tag: str) -> list[dict[str, Any]]:
    return [
        envelope(
            org.org_id,
            email=f"{tag}{i}@example.com",
            phone=f"+1512555{i + 200:04d}" if tag == "budget" else f"+1512556{i + 200:04d}",
            event="tour_request",
            channel="web",
            source="website",
            message="Can I see it Saturday?",
        )
        for i in range(BATCH)
    ]


async def test_a_batch_of_new_renters_stays_within_the_statement_budget(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    warm = await client.post("/v1/internal/signals", json=tour_requests(org, "warm"), headers=SERVICE_HEADERS)
    assert warm.status_code == 200
    with counting() as seen:
        response = await client.post("/v1/internal/signals", json=tour_requests(org, "budget"), headers=SERVICE_HEADERS)
    assert response.status_code == 200
    assert [result["status"] for result in response.json()] == [200] * BATCH
    assert all(result["outcome"]["created"] for result in response.json())
    assert len(seen) <= PER_SIGNAL_BUDGET * BATCH, f"{len(seen) / BATCH:.1f} statements per signal"
    reads = Counter(
        table
        for statement in seen
        for table in READ_ONCE
        if re.search(rf"^\s*SELECT .* FROM {table}\b", statement, re.S)
    )
    assert all(reads[table] <= 1 for table in READ_ONCE), reads
    updates = [s for s in seen if s.lstrip().startswith("UPDATE leads")]
    assert not updates, "a new lead is written once, with its next action (the batch defers the references)"
    contacts = [s for s in seen if s.lstrip().startswith(("INSERT INTO contacts", "WITH new_contact"))]
    assert len(contacts) == 1, f"{len(contacts)} contact INSERTs: the batch writes its new renters at once"
    identities = [s for s in seen if s.lstrip().startswith("INSERT INTO contact_identities")]
    assert len(identities) == 1, f"{len(identities)} identity INSERTs: and their emails and phones at once"
    locks = [s for s in seen if "pg_advisory_xact_lock" in s]
    assert len(locks) == 1, f"{len(locks)} lock statements: the batch takes them all (new renters need no other)"
    feed = [s for s in seen if s.lstrip().startswith("INSERT INTO notifications")]
    assert len(feed) == 1, f"{len(feed)} notification INSERTs: the batch writes its signals' feed entries at once"
    steps = [s for s in seen if s.lstrip().startswith("INSERT INTO scheduled_actions")]
    assert len(steps) == 1, f"{len(steps)} step INSERTs: the batch's flush writes every signal's follow-ups"
    for table in ("lead_events", "automation_log", "stream_events"):  # kept as values, written at the batch's end
        inserts = [s for s in seen if s.lstrip().startswith(f"INSERT INTO {table} ")]
        assert len(inserts) == 1, f"{len(inserts)} INSERTs into {table}: one for the whole batch"
    messages = [s for s in seen if s.lstrip().startswith("INSERT INTO outbound_messages")]
    assert len(messages) == 2, f"{len(messages)} message INSERTs: the renters' first replies, then the staff emails"
    # and each of the flush's INSERTs carries the rows of every signal (VALUES (…), (…) …), where asyncpg's
    # executemany of a one-row INSERT runs it once per row (shared.db.make_engine)
    for table in ("outbound_messages", "scheduled_actions", "tasks", "signal_applications"):
        rows = max(s.count("), (") + 1 for s in seen if s.lstrip().startswith(f"INSERT INTO {table} "))
        assert rows >= BATCH, f"{table}: {rows} rows in its INSERT: the rest were sent one INSERT each"


async def test_a_batch_notifies_each_watcher_once_per_new_renter_with_one_email_each(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """What the batch writes at its end is what each signal decided: a feed entry and an email per watcher and
    new renter, none twice for a signal repeated in the batch, each email queued for sending."""
    bodies = tour_requests(org, "watch")
    response = await client.post(
        "/v1/internal/signals", json=[*bodies, bodies[0]], headers=SERVICE_HEADERS
    )  # the first one twice
    assert response.status_code == 200
    leads = {result["outcome"]["lead_id"] for result in response.json()}
    assert len(leads) == BATCH
    async with sessionmaker() as session:
        feed = (
            await session.execute(
                select(Notification.lead_id, Notification.user_id).where(Notification.org_id == org.org_id)
            )
        ).all()
        emails = (
            await session.execute(
                select(OutboundMessage.lead_id, OutboundMessage.user_id, OutboundMessage.status).where(
                    OutboundMessage.org_id == org.org_id, OutboundMessage.kind == "notification"
                )
            )
        ).all()
    watchers = {user_id for _, user_id in feed}
    assert watchers, "the organization's admin watches new leads"
    assert sorted((str(lead), user) for lead, user in feed) == sorted(
        (lead, user) for lead in leads for user in watchers
    )
    assert sorted((str(lead), user) for lead, user, _ in emails) == sorted(
        (lead, user) for lead in leads for user in watchers
    )
    assert {status for _, _, status in emails} == {"queued"}


def test_outside_a_batch_nothing_is_remembered() -> None:
    session = AsyncSession()
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    async def twice() -> tuple[int, int]:
        return await txmemo.remember(session, "k", load), await txmemo.remember(session, "k", load)

    assert asyncio.run(twice()) == (1, 2)  # a request that edits configuration reads what it wrote
    with txmemo.batch_scope(session):
        assert asyncio.run(twice()) == (3, 3)
    assert txmemo.MEMO_KEY not in session.info


def test_a_failed_signal_forgets_the_locks_its_savepoint_took() -> None:
    session = AsyncSession()
    with txmemo.batch_scope(session):
        txmemo.note_locks(session, 0, ["batch-lock"])
        with pytest.raises(RuntimeError), txmemo.signal_scope(session):
            txmemo.note_locks(session, 0, ["renter-lock"])
            assert txmemo.holds_locks(session, 0, ["batch-lock", "renter-lock"])
            raise RuntimeError("the savepoint rolls back")
        assert txmemo.holds_locks(session, 0, ["batch-lock"])
        assert not txmemo.holds_locks(session, 0, ["renter-lock"])  # PostgreSQL released it with the savepoint


def test_a_failed_signal_leaves_nothing_for_the_end_of_the_batch() -> None:
    session = AsyncSession()
    with txmemo.batch_scope(session):
        txmemo.defer(session, "notifications")
        pending = txmemo.deferred(session, "notifications")
        assert pending is not None
        pending["kept"] = 1
        with pytest.raises(RuntimeError), txmemo.signal_scope(session):
            inner = txmemo.deferred(session, "notifications")
            assert inner is not None
            inner["dropped"] = 2
            raise RuntimeError("the savepoint rolls back")
        assert txmemo.deferred(session, "notifications") == {"kept": 1}
    assert txmemo.deferred(session, "notifications") is None  # outside a batch: written at once
