"""Reply-time histograms: the bucket function, and the histogram answer against the exact one at volume."""

from __future__ import annotations

import importlib.util
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.metrics import queries, replies, rolled
from services.api.metrics.rollups import compact, disagreements, roll_trailing
from services.api.metrics.scope import LeadScope
from shared.models import Contact, Lead, Property
from tests.conftest import OrgFixture
from tests.metrics.test_rollups import assert_close


async def test_the_sql_buckets_match_the_python_ones_and_cut_exactly_at_the_thresholds(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rng = random.Random(7)
    values = [0.0, -5.0, 0.1, 0.1000001, *replies.EDGES, *(edge + 1e-6 for edge in replies.EDGES)]
    values += [10 ** rng.uniform(-2, 7.5) for _ in range(2000)]
    async with sessionmaker() as session:
        rows = await session.execute(
            text("SELECT v, metric_reply_bucket(v) FROM unnest(CAST(:values AS double precision[])) v"),
            {"values": values},
        )
        got = {float(v): int(b) for v, b in rows}
    for value in values:
        assert got[value] == replies.bucket_of(value), value
    for edge, last in replies.LAST.items():
        assert got[edge] == last and got[edge + 1e-6] == last + 1  # "within 5 minutes" is bucket <= LAST[300]
    for bucket in range(1, replies.TOP + 400):
        low, high = replies.bucket_bounds(bucket)
        assert high / low <= replies.GAMMA + 1e-12
        # inner edges are floating point (only the thresholds are exact): a hair inside each end
        assert replies.bucket_of(high * (1 - 1e-9)) == bucket
        assert replies.bucket_of(low * (1 + 1e-9)) == bucket


async def _replied_leads(
    org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession], base: datetime, days: int, count: int, seed: int
) -> list[uuid.UUID]:
    """`count` leads over `days` days from `base`, at a New York and a Kolkata property (every 7th without one:
    the organization's timezone), replies from 0 s to days: many replies share a bucket."""
    rng = random.Random(seed)
    properties = [uuid.uuid4(), uuid.uuid4()]
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert(Property),
            [
                {"id": properties[0], "org_id": org.org_id, "name": "A", "timezone": "America/New_York"},
                {"id": properties[1], "org_id": org.org_id, "name": "B", "timezone": "Asia/Kolkata"},
            ],
        )
        contacts, leads = [], []
        for i in range(count):
            contact = uuid.uuid4()
            created = base + timedelta(minutes=rng.randrange(days * 24 * 60))

            def reply(p: float, scale: float, created: datetime = created) -> datetime | None:
                return created + timedelta(seconds=rng.expovariate(1 / scale)) if rng.random() < p else None

            automated, human = reply(0.7, 40), reply(0.8, 3000)
            contacts.append({"id": contact, "org_id": org.org_id, "kind": "tenant", "full_name": "R"})
            leads.append(
                {
                    "id": uuid.uuid4(),
                    "org_id": org.org_id,
                    "contact_id": contact,
                    "property_id": properties[i % 2] if i % 7 else None,
                    "source": rng.choice(["zillow", "website", None]),
                    "owner_id": org.admin_user_id if i % 3 else None,
                    "status": "new",
                    "created_at": created,
                    "updated_at": created,
                    "first_automated_response_at": automated,
                    "first_human_response_at": human,
                    "first_response_at": min((t for t in (automated, human) if t), default=None),
                }
            )
        await session.execute(insert(Contact), contacts)
        await session.execute(insert(Lead), leads)
    return properties


async def _assert_answers_close(
    session: AsyncSession, org: OrgFixture, windows: list[tuple[datetime, datetime]], filters: list[dict[str, Any]]
) -> None:
    for start, end in windows:
        for where in filters:
            rolled = queries.Filter(org.org_id, start, end, LeadScope(), **where)
            raw = queries.Filter(org.org_id, start, end, LeadScope(), raw=True, **where)
            for group in queries.GROUPS:
                assert_close(
                    await queries.response_time(session, rolled, group),
                    await queries.response_time(session, raw, group),
                )


async def test_percentiles_from_the_histograms_stay_within_the_bound_at_volume(
    org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """2,000 leads over 40 days in two timezones, replies from 0 s to days: many replies share a bucket."""
    base = datetime(2026, 10, 1, tzinfo=UTC)
    properties = await _replied_leads(org, sessionmaker, base, 40, 2000, 13)
    async with sessionmaker() as session, session.begin():
        while await compact(session, batch=700):  # folded in pieces; the last ones stay as deltas
            pass
        assert await disagreements(session, org.org_id) == []
        windows = [
            (base + timedelta(days=2, hours=5), base + timedelta(days=32, hours=1)),
            (base - timedelta(days=1), base + timedelta(days=45)),
        ]
        await _assert_answers_close(session, org, windows, [{}, {"property_id": properties[1]}, {"source": "zillow"}])


async def _signs(session: AsyncSession, start: datetime, end: datetime, org_id: uuid.UUID) -> set[tuple[str, int]]:
    """(grain, sign) of the signed pieces a window is read as (every timezone of the organization)."""
    f = queries.Filter(org_id, start, end, LeadScope())
    rows = await session.execute(text(queries.with_bounds("SELECT DISTINCT grain, sign FROM pieces_n")), f.params())
    return {(grain, int(sign)) for grain, sign in rows}


async def test_partial_months_read_as_the_month_minus_the_days_outside_agree_with_raw_rows(
    org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A partial month mostly inside the window is read as its month row minus the weeks and days outside it:
    windows with such months at both edges, at one edge, inside one month, and with none (weeks and days),
    grouped by every dimension (week groups straddle the month ends), before and after folding."""
    base = datetime(2026, 9, 20, tzinfo=UTC)
    properties = await _replied_leads(org, sessionmaker, base, 85, 1500, 29)
    windows = {
        # September 20-30 and October 1-27 (local): October minus its last days; September from days and a week
        "month minus its end": (datetime(2026, 9, 20, 7, tzinfo=UTC), datetime(2026, 10, 28, 3, tzinfo=UTC)),
        # October 13-31 and November 1-26: both partial months read as the month minus the days outside (October
        # minus a whole week, October 5-11, and the days around it)
        "both edges": (datetime(2026, 10, 12, 5, 30, tzinfo=UTC), datetime(2026, 11, 27, 13, tzinfo=UTC)),
        # inside October, most of it: October minus its first and last days
        "inside one month": (datetime(2026, 10, 2, 9, tzinfo=UTC), datetime(2026, 10, 30, 2, tzinfo=UTC)),
        # less than half of each month: weeks and days only
        "no cover": (datetime(2026, 10, 21, 1, tzinfo=UTC), datetime(2026, 11, 9, 22, tzinfo=UTC)),
    }
    async with sessionmaker() as session, session.begin():
        signs = {name: await _signs(session, *window, org.org_id) for name, window in windows.items()}
    assert ("m", 1) in signs["both edges"] and {("d", -1), ("w", -1)} <= signs["both edges"]
    assert ("m", 1) in signs["inside one month"] and ("d", -1) in signs["inside one month"]
    assert ("m", 1) in signs["month minus its end"] and ("d", -1) in signs["month minus its end"]
    assert all(sign == 1 for _, sign in signs["no cover"]) and ("w", 1) in signs["no cover"]
    filters: list[dict[str, Any]] = [{}, {"property_id": properties[0]}, {"source": "website", "kind": "tenant"}]
    async with sessionmaker() as session, session.begin():  # nothing folded: every row a delta
        await _assert_answers_close(session, org, list(windows.values()), filters)
    async with sessionmaker() as session, session.begin():
        while await compact(session, batch=400):
            pass
        await _assert_answers_close(session, org, list(windows.values()), filters)
        # weeks only at level n (the week grouping); the other levels' partial months read days
        views = await session.execute(
            text("SELECT DISTINCT view FROM metric_reply_rollups WHERE org_id = :org AND view LIKE '%.w'"),
            {"org": org.org_id},
        )
        assert {view for (view,) in views} == {"n.w"}


def test_migration_r19g_drops_the_weeks_the_levels_no_longer_keep() -> None:
    """The migration's SQL is a frozen copy: its list must match replies.LEVEL_GRAINS."""
    path = Path(__file__).parents[2] / "migrations" / "versions" / "2026-11-30-1530_metric_reply_weeks.py"
    spec = importlib.util.spec_from_file_location("_r19g", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dropped = {f"{level}.w" for level, grains in replies.LEVEL_GRAINS.items() if "w" not in grains}
    assert set(module.DROPPED) == dropped
    assert module.MEASURES == replies.MEASURES and module.KEY == replies.RKEY


def test_a_histogram_read_out_of_order_gives_the_same_answer() -> None:
    """array_agg over a sorted subquery keeps its order in practice; the reader does not rely on it."""
    row = {
        "bucket": [-1, 3, 200, 250, 400],
        "automated": [5, 2, 0, 7, 1],
        "human": [4, 0, 3, 1, 7],
        "first": [2, 2, 3, 7, 1],
        "automated_ms": [0, 30, 0, 7 * 1_500_000, 5_000_000],
        "human_ms": [0, 0, 3 * 200_000, 9_000_000, 7 * 9_000_000],
        "first_ms": [0, 30, 3 * 200_000, 7 * 1_500_000, 5_000_000],
    }
    order = [3, 0, 4, 2, 1]
    shuffled = {name: [values[i] for i in order] for name, values in row.items()}
    assert rolled.histogram_answer("k", shuffled) == rolled.histogram_answer("k", row)
    answer = rolled.histogram_answer("k", row)
    assert answer is not None and answer["leads"] == 15
    assert answer["automated"]["responded"] == 10 and answer["human"]["responded"] == 11


async def _trailing_pieces(session: AsyncSession, start: datetime, end: datetime, org_id: uuid.UUID) -> set[Any]:
    """(timezone, grain, sign) of the pieces a window is read as at a level that keeps trailing windows."""
    f = queries.Filter(org_id, start, end, LeadScope())
    rows = await session.execute(text(queries.with_bounds("SELECT tz, grain, sign FROM trailing_p", True)), f.params())
    return {(tz, grain, int(sign)) for tz, grain, sign in rows}


async def test_the_last_30_and_365_days_read_the_trailing_windows_kept_by_the_fold_and_moved_each_day(
    org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession], clock: Any
) -> None:
    """Leads over 14 months in two timezones: the default 30-day window and a year ending now read one row set
    each (`<level>.t30`, `<level>.t365`); a longer window reads the year and the days before it. Answers equal the
    raw ones before and after folding, with late replies and new leads folded into the windows, and when a day
    begins: the windows end yesterday until the cron moves them (the last 30 days then read months and days, a
    window ending today reads the 30 days ending yesterday and today's leads), then they end today."""
    base = datetime(2025, 9, 1, tzinfo=UTC)
    now = datetime(2026, 11, 10, 15, tzinfo=UTC)  # November 10th in both timezones
    clock.set(now)
    properties = await _replied_leads(org, sessionmaker, base, 435, 1500, 41)
    end = now.replace(minute=0) + timedelta(hours=1)  # the default window's end: the next full hour
    windows = [(end - timedelta(days=d), end) for d in (30, 365, 400)]
    filters: list[dict[str, Any]] = [{}, {"property_id": properties[1]}, {"source": "zillow"}]
    async with sessionmaker() as session, session.begin():
        while await compact(session, batch=600):
            pass
        zones = await session.scalar(
            text("SELECT count(DISTINCT tz) FROM metric_reply_rollups WHERE org_id = :org"), {"org": org.org_id}
        )
        assert zones == 2  # New York (property A's and the organization's) and Kolkata
        assert await roll_trailing(session) >= zones  # built: the fold left them without a day (other tests' too)
        kept = await session.execute(
            text("SELECT day FROM metric_reply_trailing WHERE org_id = :org"), {"org": org.org_id}
        )
        assert {day for (day,) in kept} == {date(2026, 11, 10)}
        assert await roll_trailing(session) == 0  # already ending today
        month, year, longer = [await _trailing_pieces(session, *w, org.org_id) for w in windows]
        assert {(grain, sign) for _, grain, sign in month} == {("t30", 1)}
        assert {(grain, sign) for _, grain, sign in year} == {("t365", 1)}
        assert ("t365", 1) in {(grain, sign) for _, grain, sign in longer} and len(longer) > 2
        assert await disagreements(session, org.org_id) == []
        await _assert_answers_close(session, org, windows, filters)
        # a window ending before today reads no trailing window
        earlier = (end - timedelta(days=35), end - timedelta(days=5))
        assert not any(grain.startswith("t") for _, grain, _ in await _trailing_pieces(session, *earlier, org.org_id))
    # late replies to leads of the year's first months, and new leads this month: deltas, then folded
    async with sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "UPDATE leads SET first_human_response_at = created_at + interval '17 minutes', "
                "first_response_at = LEAST(first_response_at, created_at + interval '17 minutes') "
                "WHERE org_id = :org AND created_at >= '2025-11-20' AND created_at < '2026-01-10'"
            ),
            {"org": org.org_id},
        )
    await _replied_leads(org, sessionmaker, datetime(2026, 11, 1, tzinfo=UTC), 9, 200, 43)
    async with sessionmaker() as session, session.begin():
        await _assert_answers_close(session, org, windows, filters)  # unfolded deltas read into the windows
        while await compact(session, batch=500):
            pass
        assert await disagreements(session, org.org_id) == []
        await _assert_answers_close(session, org, windows, filters)
    # two days later, leads of November 11th-12th: until the cron moves the windows, the last 30 days read months
    # and days, the last 40 days the 30 days ending on the 10th, the days before them and the two days after it;
    # then the windows end on the 12th
    later = clock.advance(days=2, hours=2)  # 22:30 in Kolkata: from 23:30 the next full hour is tomorrow there
    await _replied_leads(org, sessionmaker, datetime(2026, 11, 11, tzinfo=UTC), 1, 120, 47)
    end = later.replace(minute=0) + timedelta(hours=1)
    recent = [(end - timedelta(days=d), end) for d in (30, 40, 365)]
    async with sessionmaker() as session, session.begin():
        assert not any(g.startswith("t") for _, g, _ in await _trailing_pieces(session, *recent[0], org.org_id))
        stale = await _trailing_pieces(session, *recent[1], org.org_id)
        assert {(grain, sign) for _, grain, sign in stale} >= {("t30", 1), ("d", 1)}
        await _assert_answers_close(session, org, recent, filters)
        assert await roll_trailing(session) >= zones
        kept = await session.execute(
            text("SELECT day FROM metric_reply_trailing WHERE org_id = :org"), {"org": org.org_id}
        )
        assert [day for (day,) in kept] == [date(2026, 11, 12)] * zones
        moved = await _trailing_pieces(session, *recent[0], org.org_id)
        assert {grain for _, grain, _ in moved} == {"t30"}
        assert await disagreements(session, org.org_id) == []
        await _assert_answers_close(session, org, recent, filters)
