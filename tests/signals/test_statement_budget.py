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
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import txmemo
from tests.conftest import OrgFixture
from tests.signals.helpers import SERVICE_HEADERS, envelope

BATCH = 10
# 45 before the batch memo (session 4); 19.5 then; 13.0 with one savepoint per batch, owners and consent read
# once, and the lead written once (references to it checked at commit); 7.6 with one ORM flush per batch
PER_SIGNAL_BUDGET = 8
READ_ONCE = ("assignment_settings", "automation_rule_sets", "messaging_settings", "notification_preferences")


@contextmanager
def counting() -> Iterator[list[str]]:
    seen: list[str] = []

    def hook(*args: Any) -> None:
        seen.append(args[2])  # (conn, cursor, statement, parameters, context, executemany)

    event.listen(Engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", hook)


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
    locks = [s for s in seen if "pg_advisory_xact_lock" in s]
    assert len(locks) == 1, f"{len(locks)} lock statements: the batch takes them all (new renters need no other)"


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
