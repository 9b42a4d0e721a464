"""Rollups always agree with a recomputation from raw rows, whatever sequence of writes happened."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.leads.events import add_status_event
from services.api.leads.status import FUNNEL_RANK
from services.api.metrics import queries
from services.api.metrics.rollups import compact, disagreements, rebuild_org, roll_trailing
from services.api.metrics.scope import LeadScope
from shared.config import Settings
from shared.db import make_engine, make_sessionmaker
from shared.enums import LeadStatus, Role
from shared.models import Contact, Lead, LeadEvent, Property, User
from shared.repositories import driver
from shared.repositories.rows import full_row
from tests.conftest import OrgFixture, make_org

BASE = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)  # DST starts in the US the next night
STATUSES = [s.value for s in LeadStatus]
SOURCES = ["zillow", "website", None]
ZONES = ["America/New_York", "America/Los_Angeles", "Asia/Kolkata"]

create = st.tuples(
    st.just("create"), st.integers(0, 2), st.sampled_from(SOURCES), st.integers(0, 2), st.integers(0, 400)
)
operation = st.one_of(
    create,
    st.tuples(st.just("status"), st.integers(0, 50), st.sampled_from(STATUSES), st.integers(0, 400)),
    st.tuples(st.just("owner"), st.integers(0, 50), st.integers(0, 2)),
    st.tuples(st.just("property"), st.integers(0, 50), st.integers(0, 2)),
    st.tuples(st.just("latest"), st.integers(0, 50), st.sampled_from(SOURCES)),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("tz"), st.integers(0, 2), st.sampled_from(ZONES)),
    st.tuples(st.just("event_move"), st.integers(0, 50), st.integers(0, 50)),
    st.tuples(
        st.just("compact"),
    ),
    # the trailing windows moved to end on the local day of BASE, BASE + 10 days or BASE + 20 days (back or forth)
    st.tuples(st.just("roll"), st.integers(0, 2)),
    # a first reply (0 automated, 1 human, 2 any) after that many seconds; a next action cleared / due then
    st.tuples(st.just("reply"), st.integers(0, 50), st.integers(0, 2), st.integers(0, 200_000)),
    st.tuples(st.just("action"), st.integers(0, 50), st.sampled_from([None, -30, 0, 30, 900])),
)
REPLY_COLUMNS = ("first_automated_response_at", "first_human_response_at", "first_response_at")
AS_OF = BASE + timedelta(hours=100)


async def _apply(session: AsyncSession, org_id: uuid.UUID, world: dict[str, Any], op: tuple[Any, ...]) -> None:
    leads: list[uuid.UUID] = world["leads"]
    kind = op[0]
    if kind == "create":
        contact = Contact(id=uuid.uuid4(), org_id=org_id, kind="tenant", full_name="R")
        session.add(contact)
        await session.flush()
        lead = Lead(
            id=uuid.uuid4(),
            org_id=org_id,
            contact_id=contact.id,
            property_id=world["properties"][op[1]] if op[1] < 2 else None,
            source=op[2],
            latest_source=op[2],
            owner_id=world["users"][op[3]] if op[3] < 2 else None,
            status="new",
            created_at=BASE + timedelta(hours=op[4]),
            updated_at=BASE,
        )
        session.add(lead)
        await session.flush()
        leads.append(lead.id)
        return
    if kind == "compact":
        await compact(session, batch=7)
        return
    if kind == "roll":
        await roll_trailing(session, now=BASE + timedelta(days=10 * op[1]))
        return
    if kind == "tz":
        await session.execute(
            update(Property).where(Property.id == world["properties"][op[1] % 2]).values(timezone=op[2])
        )
        return
    if not leads:
        return
    lead_id = leads[op[1] % len(leads)]
    if kind == "status":
        lead = await session.get(Lead, lead_id)
        if lead is None:
            return
        previous = lead.status
        lead.status = op[2]
        if op[2] in FUNNEL_RANK:
            lead.reached_rank = max(lead.reached_rank, FUNNEL_RANK[LeadStatus(op[2])])
        add_status_event(session, lead, previous, occurred_at=BASE + timedelta(hours=op[3]))
        await session.flush()
    elif kind == "owner":
        await session.execute(
            update(Lead).where(Lead.id == lead_id).values(owner_id=world["users"][op[2]] if op[2] < 2 else None)
        )
    elif kind == "property":
        await session.execute(
            update(Lead).where(Lead.id == lead_id).values(property_id=world["properties"][op[2]] if op[2] < 2 else None)
        )
    elif kind == "latest":
        await session.execute(update(Lead).where(Lead.id == lead_id).values(latest_source=op[2]))
    elif kind == "delete":
        await session.execute(delete(Lead).where(Lead.id == lead_id))
        leads.remove(lead_id)
    elif kind == "reply":
        lead = await session.get(Lead, lead_id)
        if lead is not None:
            setattr(lead, REPLY_COLUMNS[op[2]], lead.created_at + timedelta(seconds=op[3]))
            await session.flush()
    elif kind == "action":
        due = None if op[2] is None else AS_OF + timedelta(hours=op[2])
        await session.execute(
            update(Lead)
            .where(Lead.id == lead_id)
            .values(next_action_type=None if due is None else "call", next_action_due_at=due)
        )
    elif kind == "event_move":  # a merge moving timeline entries to another lead
        target = leads[op[2] % len(leads)]
        await session.execute(update(LeadEvent).where(LeadEvent.lead_id == lead_id).values(lead_id=target))


# each example checks ~1,200 rolled-up answers against raw ones: 25 examples took 7.5 min per suite pass on a slow
# 2-core host (session 21), 15 % of the CI's 60-minute budget twice over; 15 keep every operation kind in play
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(creates=st.lists(create, min_size=2, max_size=8), ops=st.lists(operation, min_size=1, max_size=30))
def test_rollups_agree_with_recomputation_after_random_operations(
    creates: list[tuple[Any, ...]], ops: list[tuple[Any, ...]], settings: Settings
) -> None:
    """Hypothesis drives a sync test; each example runs on its own event loop and engine."""
    # folded and the trailing windows ending on March 17th before the random operations: the windows below that
    # end just after it read them
    asyncio.run(_random_operations([*creates, ("compact",), ("roll", 1), *ops], settings))


async def _random_operations(ops: list[tuple[Any, ...]], app_settings: Settings) -> None:
    assert app_settings.database_url
    engine = make_engine(app_settings.database_url, 2)
    try:
        await _check_random_operations(ops, make_sessionmaker(engine))
    finally:
        await engine.dispose()


async def _check_random_operations(ops: list[tuple[Any, ...]], sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    org = await make_org(sessionmaker, "Hypothesis Org")
    world: dict[str, Any] = {"leads": []}
    async with sessionmaker() as session, session.begin():
        world["properties"] = [uuid.uuid4(), uuid.uuid4()]
        await session.execute(
            insert(Property),
            [
                {"id": world["properties"][0], "org_id": org.org_id, "name": "A", "timezone": "America/New_York"},
                {"id": world["properties"][1], "org_id": org.org_id, "name": "B", "timezone": "Asia/Kolkata"},
            ],
        )
        world["users"] = [uuid.uuid4(), uuid.uuid4()]
        await session.execute(
            insert(User),
            [
                {"id": u, "org_id": org.org_id, "email": f"{u}@example.com", "name": "U", "role": Role.agent}
                for u in world["users"]
            ],
        )
    for op in ops:  # each operation in its own transaction, as requests would be
        async with sessionmaker() as session, session.begin():
            await _apply(session, org.org_id, world, op)
    async with sessionmaker() as session, session.begin():
        assert await disagreements(session, org.org_id) == []
        # every answer from the rollups equals the raw answer, for windows with partial local days, grouped and
        # filtered so that every coarse level (and the fine day rows) is read
        filters: list[dict[str, Any]] = [
            {},
            {"property_id": world["properties"][0]},
            {"source": "zillow", "kind": "tenant"},
            {"property_id": world["properties"][1], "source": "website"},
        ]
        for start, end in (
            (BASE - timedelta(days=1), BASE + timedelta(days=30)),
            (BASE - timedelta(days=15), BASE + timedelta(days=40)),  # March whole: the month rollups answer
            (BASE + timedelta(hours=5), BASE + timedelta(hours=200, minutes=30)),
            # whole local weeks (Monday to Monday) across the DST change and the month's end: week rows
            (BASE + timedelta(days=1, hours=3), BASE + timedelta(days=26, hours=7)),
            # no whole month; whole weeks in the partial month at the end
            (BASE - timedelta(days=25, hours=2), BASE + timedelta(days=13, hours=3)),
            # shorter than a day: no whole local day in one timezone, across a local midnight in another
            (BASE + timedelta(hours=3), BASE + timedelta(hours=15)),
            # with the trailing windows ending on March 17th (27th): the 30 days before it (and the days around
            # them, before: a partial month, after: days with leads), the 365 days and the days around them, and the
            # 30 days ending on March 27th exactly
            (BASE - timedelta(days=25), BASE + timedelta(days=14, hours=5)),
            (BASE - timedelta(days=370), BASE + timedelta(days=12)),
            (BASE - timedelta(days=10), BASE + timedelta(days=20, hours=5)),
        ):
            for where in filters:
                rolled = queries.Filter(org.org_id, start, end, LeadScope(), **where)
                raw = queries.Filter(org.org_id, start, end, LeadScope(), raw=True, **where)
                for group in queries.GROUPS:
                    assert await queries.funnel_cohort(session, rolled, group) == await queries.funnel_cohort(
                        session, raw, group
                    ), (start, end, where, group)
                    assert await queries.funnel_activity(session, rolled, group) == await queries.funnel_activity(
                        session, raw, group
                    ), (start, end, where, group)
                assert await queries.attribution(session, rolled) == await queries.attribution(session, raw)
                for group in queries.GROUPS:
                    assert_close(
                        await queries.response_time(session, rolled, group),
                        await queries.response_time(session, raw, group),
                    )
                as_of = {"as_of": AS_OF}
                opened = ("open_leads", "no_owner", "no_next_action", "overdue_next_action")
                health, health_raw = (
                    await queries.health(session, rolled, **as_of),
                    await queries.health(session, raw, **as_of),
                )
                assert {k: health[k] for k in opened} == {k: health_raw[k] for k in opened}, where
        await rebuild_org(session, org.org_id)
        assert await disagreements(session, org.org_id) == []


def assert_close(rolled: list[dict[str, Any]], raw: list[dict[str, Any]]) -> None:
    """The histogram answer equals the raw one: counts, shares and distribution exactly, median and p90 within
    the documented bound (2 % of the raw value, plus both answers' rounding to 0.1 s)."""
    assert [row["key"] for row in rolled] == [row["key"] for row in raw]
    for a, b in zip(rolled, raw, strict=True):
        assert a["leads"] == b["leads"]
        for kind in ("automated", "human", "first"):
            for name in ("median_seconds", "p90_seconds"):
                x, y = a[kind][name], b[kind][name]
                assert (x is None) == (y is None), (a, b)
                if x is not None:
                    assert abs(x - y) <= 0.02 * abs(y) + 0.1, (kind, name, x, y)
            exact = {k: v for k, v in a[kind].items() if k not in ("median_seconds", "p90_seconds")}
            assert exact == {k: v for k, v in b[kind].items() if k not in ("median_seconds", "p90_seconds")}


def test_each_request_reads_the_smallest_rollup_level_that_keeps_its_groups_and_filters() -> None:
    org = uuid.uuid4()
    f = queries.Filter(org, BASE, BASE + timedelta(days=90), LeadScope())
    assert "'s.' || pc.grain" in queries.cohort_facts(f, "cohort", "week")
    assert "pieces_w" in queries.cohort_facts(f, "cohort", "week")  # weeks straddle months: weeks and days
    assert "pieces_m" in queries.cohort_facts(f, "cohort", "month")
    assert "'as.' || pc.grain" in queries.activity_facts(f, "none")
    assert "'o.' || pc.grain" in queries.cohort_facts(f, "cohort", "owner")
    assert "'ls.' || pc.grain" in queries.cohort_facts(f, "last", "source")
    with_property = queries.Filter(org, BASE, BASE + timedelta(days=90), LeadScope(), property_id=uuid.uuid4())
    assert "'p.' || pc.grain" in queries.cohort_facts(with_property, "cohort", "week")
    assert "'ps.' || pc.grain" in queries.cohort_facts(with_property, "cohort", "source")
    assert "'po.' || pc.grain" in queries.cohort_facts(with_property, "cohort", "owner")
    assert "'lps.' || pc.grain" in queries.cohort_facts(with_property, "last", "source")
    with_source = queries.Filter(org, BASE, BASE + timedelta(days=90), LeadScope(), source="zillow")
    assert "'aso.' || pc.grain" in queries.activity_facts(with_source, "owner")
    both = queries.Filter(org, BASE, BASE + timedelta(days=90), LeadScope(), property_id=uuid.uuid4(), source="z")
    assert "metric_counts" in queries.cohort_facts(both, "cohort", "owner")  # only the fine day rows keep all three


async def test_a_new_lead_and_a_status_change_append_two_base_deltas_each(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The per-write cost on intake: the coarse levels come from the fold, not from more trigger rows."""

    async def deltas() -> int:
        async with sessionmaker() as session:
            return int(
                await session.scalar(
                    text("SELECT count(*) FROM metric_count_deltas WHERE org_id = :org"), {"org": org.org_id}
                )
                or 0
            )

    created = await client.post("/v1/leads", json={"email": "one@example.com", "source": "zillow"}, headers=org.headers)
    assert created.status_code == 201
    # the lead's row, and the rules' first next action as one difference row (open leads without next action -1)
    assert await deltas() == 2
    lead_id = uuid.UUID(created.json()["id"])
    async with sessionmaker() as session, session.begin():
        lead = await session.get(Lead, lead_id)
        assert lead is not None
        previous = lead.status
        lead.status = LeadStatus.contacted
        lead.reached_rank = FUNNEL_RANK[LeadStatus.contacted]
        add_status_event(session, lead, previous)
    assert await deltas() == 2 + 1 + 1  # the stage reached as one difference row, and the stage entry
    async with sessionmaker() as session, session.begin():
        assert await compact(session) > 0
        assert await disagreements(session, org.org_id) == []
    assert await deltas() == 0


async def test_default_window_polling_gets_a_304(client: httpx.AsyncClient, org: OrgFixture, clock: Any) -> None:
    for path in (
        "funnel",
        "funnel?view=activity",
        "response-time",
        "attribution",
        "health",
        "speed-to-lead",
        "identity",
    ):
        first = await client.get(f"/v1/metrics/{path}", headers=org.headers)
        assert first.status_code == 200, first.text
        assert first.headers["cache-control"].startswith("private")
        clock.advance(seconds=20)  # the next poll, still in the same bucket
        again = await client.get(f"/v1/metrics/{path}", headers={**org.headers, "If-None-Match": first.headers["etag"]})
        assert again.status_code == 304, path
        assert again.headers["etag"] == first.headers["etag"]


async def test_a_change_breaks_the_etag(client: httpx.AsyncClient, org: OrgFixture, clock: Any) -> None:
    first = await client.get("/v1/metrics/funnel", headers=org.headers)
    created = await client.post("/v1/leads", json={"email": "new@example.com", "source": "zillow"}, headers=org.headers)
    assert created.status_code == 201
    again = await client.get("/v1/metrics/funnel", headers={**org.headers, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 200 and again.json()["totals"]["leads"] == 1


async def _new_leads(session: AsyncSession, org_id: uuid.UUID, specs: list[dict[str, Any]]) -> list[Lead]:
    """A new renter and lead for each spec (Lead's columns; created at BASE unless given), flushed."""
    leads = []
    for spec in specs:
        contact = Contact(id=uuid.uuid4(), org_id=org_id, kind="tenant", full_name="R")
        session.add(contact)
        await session.flush()
        lead = Lead(
            **{"created_at": BASE, **spec},
            id=uuid.uuid4(), org_id=org_id, contact_id=contact.id, status="new", updated_at=BASE,
        )  # fmt: skip
        session.add(lead)
        leads.append(lead)
    await session.flush()
    return leads


async def test_timeline_entries_written_in_one_statement_roll_up_as_written_one_by_one(
    org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The intake batch writes its timeline entries in one INSERT (`driver.insert_rows`); the rollup trigger
    adds that statement's deltas at once from its transition table. Several leads, two stage entries of one lead
    on different days, a reopening (lost → new), and entries that are not stage changes: the rollups equal a
    recomputation, and the raw and rolled-up activity funnels agree."""
    async with sessionmaker() as session, session.begin():
        leads = await _new_leads(session, org.org_id, [{"source": source} for source in ("zillow", "website", None)])
        stages = [(0, "new", "contacted", 1), (0, "contacted", "tour_requested", 30), (1, "new", "lost", 2)]
        stages += [(1, "lost", "new", 50), (2, "new", "application_submitted", 3), (2, "new", "contacted", 3)]
        rows = [
            full_row(
                LeadEvent,
                {
                    "id": uuid.uuid4(),
                    "org_id": org.org_id,
                    "lead_id": leads[i].id,
                    "contact_id": leads[i].contact_id,
                    "type": "status_changed",
                    "occurred_at": BASE + timedelta(hours=hours),
                    "actor_type": "system",
                    "data": {"from": before, "to": after},
                },
            )
            for i, before, after, hours in stages
        ]
        rows += [
            full_row(
                LeadEvent,
                {
                    "id": uuid.uuid4(),
                    "org_id": org.org_id,
                    "lead_id": lead.id,
                    "contact_id": lead.contact_id,
                    "type": "note",
                    "occurred_at": BASE,
                    "actor_type": "system",
                    "data": {"to": "leased"},
                },
            )
            for lead in leads
        ]
        count = text("SELECT count(*) FROM metric_count_deltas WHERE org_id = :org")
        deltas_before = await session.scalar(count, {"org": org.org_id}) or 0
        assert await driver.insert_rows(session, LeadEvent.__table__, rows)  # type: ignore[arg-type]
        # one row per (lead's dimensions, local day) that has stage entries: lead 2's two entries share one
        assert (await session.scalar(count, {"org": org.org_id}) or 0) - deltas_before == 5
    async with sessionmaker() as session, session.begin():
        assert await disagreements(session, org.org_id) == []
        window = (BASE - timedelta(days=1), BASE + timedelta(days=5))
        rolled = queries.Filter(org.org_id, *window, LeadScope())
        raw = queries.Filter(org.org_id, *window, LeadScope(), raw=True)
        for group in queries.GROUPS:
            answer = await queries.funnel_activity(session, rolled, group)
            assert answer == await queries.funnel_activity(session, raw, group), group
        total = await queries.funnel_activity(session, rolled, "none")
        counted = {k: total[0][k] for k in ("contacted", "tour_requested", "applied", "lost", "reopened", "leased")}
        # an application submitted straight from new counts as applied; the notes count for nothing
        assert counted == {"contacted": 2, "tour_requested": 1, "applied": 1, "lost": 1, "reopened": 1, "leased": 0}


async def test_leads_updated_in_one_statement_roll_up_as_updated_one_by_one(
    org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The automated replies' first-response UPDATE touches a batch of leads in one statement; the rollup trigger
    writes that statement's deltas at once from its transition tables. In one UPDATE: two first replies (the
    cohort row moves: out and in), a stage reached and a lead lost (same key: one difference row for both), an
    owner change on a lead with stage entries (its activity moves), a property change across time zones, and a
    lead whose tracked columns stay as they were (nothing): the rollups equal a recomputation, and the raw and
    rolled-up funnels agree."""
    async with sessionmaker() as session, session.begin():
        east, india = uuid.uuid4(), uuid.uuid4()
        await session.execute(
            insert(Property),
            [
                {"id": east, "org_id": org.org_id, "name": "East", "timezone": "America/New_York"},
                {"id": india, "org_id": org.org_id, "name": "India", "timezone": "Asia/Kolkata"},
            ],
        )
        agent = uuid.uuid4()
        await session.execute(
            insert(User),
            [{"id": agent, "org_id": org.org_id, "email": "a@example.com", "name": "A", "role": Role.agent}],
        )
        sources = ("website", "zillow", "zillow", "zillow", "website", "zillow", "website")
        leads = await _new_leads(
            session,
            org.org_id,
            [
                {"property_id": east if i != 5 else None, "source": source, "created_at": BASE + timedelta(hours=i)}
                for i, source in enumerate(sources)
            ],
        )
        lead = leads[4]  # stage entries that must move with the owner
        lead.status, lead.reached_rank = "contacted", FUNNEL_RANK[LeadStatus.contacted]
        add_status_event(session, lead, "new", occurred_at=BASE + timedelta(hours=6))
        await session.flush()
    reply = BASE + timedelta(hours=8)
    changes = {  # lead → (first reply, status, reached rank, owner, property)
        0: (reply, "new", 0, None, east),
        1: (reply + timedelta(minutes=3), "new", 0, None, east),
        2: (None, "tour_booked", FUNNEL_RANK[LeadStatus.tour_booked], None, east),
        3: (None, "lost", 0, None, east),
        4: (None, "contacted", FUNNEL_RANK[LeadStatus.contacted], agent, east),
        5: (None, "new", 0, None, india),
        6: (None, "new", 0, None, east),  # only updated_at changes
    }
    count = text("SELECT count(*) FROM metric_count_deltas WHERE org_id = :org")
    async with sessionmaker() as session, session.begin():
        deltas_before = await session.scalar(count, {"org": org.org_id}) or 0
        ids, replies, statuses, ranks, owners, places = zip(
            *((leads[i].id, *change) for i, change in changes.items()), strict=True
        )
        await session.execute(
            text(
                "UPDATE leads AS l SET first_response_at = COALESCE(v.reply, l.first_response_at),"
                " first_automated_response_at = COALESCE(v.reply, l.first_automated_response_at),"
                " status = v.status, reached_rank = GREATEST(l.reached_rank, v.rank), owner_id = v.owner,"
                " property_id = v.place, updated_at = :now"
                " FROM unnest(CAST(:ids AS uuid[]), CAST(:replies AS timestamptz[]), CAST(:statuses AS text[]),"
                " CAST(:ranks AS int[]), CAST(:owners AS uuid[]), CAST(:places AS uuid[]))"
                " AS v(id, reply, status, rank, owner, place) WHERE l.id = v.id"
            ),
            {
                "ids": list(ids), "replies": list(replies), "statuses": list(statuses), "ranks": list(ranks),
                "owners": list(owners), "places": list(places), "now": reply,
            },
        )  # fmt: skip
        written = (await session.scalar(count, {"org": org.org_id}) or 0) - deltas_before
        # summed per key: out, the old rows of leads 0 and 4 (one key), 1 and 5; in, the new rows of 0 and 1
        # (their reply buckets differ), 4 (its owner) and 5 (another property, another time zone); the stage and
        # the loss (2, 3: one key) one difference row; lead 4's activity out and in; lead 6 nothing
        assert written == 3 + 4 + 1 + 2
    async with sessionmaker() as session, session.begin():
        assert await disagreements(session, org.org_id) == []
        window = (BASE - timedelta(days=1), BASE + timedelta(days=5))
        for view in (queries.funnel_activity, queries.funnel_cohort):
            rolled = queries.Filter(org.org_id, *window, LeadScope())
            raw = queries.Filter(org.org_id, *window, LeadScope(), raw=True)
            for group in queries.GROUPS:
                assert await view(session, rolled, group) == await view(session, raw, group), (view, group)
