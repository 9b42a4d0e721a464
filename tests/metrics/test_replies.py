"""Reply-time histograms: the bucket function, and the histogram answer against the exact one at volume."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.metrics import queries, replies
from services.api.metrics.rollups import compact, disagreements
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


async def test_percentiles_from_the_histograms_stay_within_the_bound_at_volume(
    org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """2,000 leads over 40 days in two timezones, replies from 0 s to days: many replies share a bucket."""
    rng = random.Random(13)
    base = datetime(2026, 10, 1, tzinfo=UTC)
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
        for i in range(2000):
            contact = uuid.uuid4()
            created = base + timedelta(minutes=rng.randrange(40 * 24 * 60))

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
    async with sessionmaker() as session, session.begin():
        while await compact(session, batch=700):  # folded in pieces; the last ones stay as deltas
            pass
        assert await disagreements(session, org.org_id) == []
        for start, end in (
            (base + timedelta(days=2, hours=5), base + timedelta(days=32, hours=1)),
            (base - timedelta(days=1), base + timedelta(days=45)),
        ):
            for where in ({}, {"property_id": properties[1]}, {"source": "zillow"}):
                rolled = queries.Filter(org.org_id, start, end, LeadScope(), **where)
                raw = queries.Filter(org.org_id, start, end, LeadScope(), raw=True, **where)
                for group in queries.GROUPS:
                    assert_close(
                        await queries.response_time(session, rolled, group),
                        await queries.response_time(session, raw, group),
                    )
