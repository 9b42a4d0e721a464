"""A scripted scenario with hand-computed answers, checked on every metrics endpoint (rollups and raw).

Two properties in different timezones (Harbor: New York, Summit: Los Angeles), two agents, three sources,
leads across four local weeks, a merge, a reopened lost lead, a lead whose source changes at its last touch,
and spend for two months (plus one outside the window). Expected values are worked out in the comments.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.auth.service import Principal
from services.api.metrics import queries
from services.api.metrics.rollups import compact, disagreements
from services.api.metrics.scope import LeadScope
from shared.clock import FakeClock
from shared.enums import Role
from shared.models import InboundMessage, Lead, LeadEvent, PropertyTeamMember, ReviewItem, User
from tests.conftest import OrgFixture
from tests.signals.helpers import deliver

WINDOW = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-15T00:00:00Z"}
AS_OF = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Scenario:
    def __init__(self, client: httpx.AsyncClient, org: OrgFixture, clock: FakeClock) -> None:
        self.client, self.org, self.clock = client, org, clock
        self.leads: dict[str, str] = {}

    async def create(self, name: str, at: str, prop: str, source: str, owner: uuid.UUID | None) -> None:
        self.clock.set(t(at))
        body: dict[str, Any] = {"email": f"{name.lower()}@example.com", "property_id": prop, "source": source}
        if owner:
            body["owner_id"] = str(owner)
        response = await self.client.post("/v1/leads", json=body, headers=self.org.headers)
        assert response.status_code == 201, response.text
        self.leads[name] = response.json()["id"]

    async def move(self, name: str, at: str, *statuses: str, reason: str | None = None) -> None:
        self.clock.set(t(at))
        for status in statuses:
            body = {"status": status, **({"lost_reason": reason} if status == "lost" else {})}
            response = await self.client.post(
                f"/v1/leads/{self.leads[name]}/status", json=body, headers=self.org.headers
            )
            assert response.status_code == 200, response.text

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = await self.client.get(f"/v1/metrics/{path}", params={**WINDOW, **params}, headers=self.org.headers)
        assert response.status_code == 200, response.text
        assert response.headers["etag"] and "max-age" in response.headers["cache-control"]
        body: dict[str, Any] = response.json()
        assert isinstance(body["version"], int)
        return body


def by_key(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in body["rows"]}


def pick(row: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(row[name] for name in names)


async def build(
    client: httpx.AsyncClient, org: OrgFixture, clock: FakeClock, sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[Scenario, dict[str, Any]]:
    s = Scenario(client, org, clock)
    harbor = (
        await client.post(
            "/v1/properties", json={"name": "Harbor", "timezone": "America/New_York"}, headers=org.headers
        )
    ).json()["id"]
    summit = (
        await client.post(
            "/v1/properties", json={"name": "Summit", "timezone": "America/Los_Angeles"}, headers=org.headers
        )
    ).json()["id"]
    ana, ben = uuid.uuid4(), uuid.uuid4()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            insert(User),
            [
                {"id": ana, "org_id": org.org_id, "email": "ana@example.com", "name": "Ana", "role": Role.agent},
                {"id": ben, "org_id": org.org_id, "email": "ben@example.com", "name": "Ben", "role": Role.agent},
            ],
        )
    # creation times (UTC) and their local weeks: L1 Harbor Sun Nov 8 22:00 EST (W45, Monday in UTC), L2 Summit
    # Sun Nov 8 23:30 PST (W45), L3 Summit Mon Nov 9 01:00 PST (W46), L4 Harbor Tue Nov 10 (W46), L6 Summit
    # Nov 16 (W47), L7 Harbor / L8 Summit Nov 18 (W47), L5 Harbor Mon Nov 30 22:00 EST (W49, and November
    # although it is December 1 in UTC)
    await s.create("L1", "2026-11-09T03:00:00", harbor, "zillow", ana)
    await s.create("L2", "2026-11-09T07:30:00", summit, "zillow", ben)
    await s.create("L3", "2026-11-09T09:00:00", summit, "website", ana)
    clock.set(t("2026-11-10T15:00:00"))  # L4 comes in from apartments, by the intake path
    first = await deliver(
        client, sessionmaker, org.org_id, email="l4@example.com", source="apartments", property_id=uuid.UUID(harbor)
    )
    s.leads["L4"] = first["lead_id"]
    current = await client.get(f"/v1/leads/{s.leads['L4']}", headers=org.headers)
    patched = await client.patch(
        f"/v1/leads/{s.leads['L4']}",
        json={"owner_id": str(ben)},
        headers={**org.headers, "If-Match": current.headers["etag"]},
    )
    assert patched.status_code == 200, patched.text
    await s.create("L6", "2026-11-16T18:00:00", summit, "zillow", ana)
    await s.create("L7", "2026-11-18T14:00:00", harbor, "website", None)
    await s.create("L8", "2026-11-18T15:00:00", summit, "website", None)
    await s.create("L5", "2026-12-01T03:00:00", harbor, "website", None)

    await s.move("L2", "2026-11-09T08:00:00", "contacted")
    await s.move("L3", "2026-11-10T18:00:00", "tour_booked")
    await s.move("L1", "2026-11-12T15:00:00", "toured")
    await s.move("L3", "2026-11-12T18:00:00", "toured")
    await s.move("L1", "2026-11-13T15:00:00", "application_started")
    await s.move("L3", "2026-11-13T20:00:00", "lost", reason="price")
    await s.move("L1", "2026-11-14T15:00:00", "application_submitted")
    await s.move("L4", "2026-11-16T15:00:00", "toured")
    await s.move("L4", "2026-11-17T15:00:00", "application_started")
    await s.move("L6", "2026-11-17T18:00:00", "lost", reason="timing")
    await s.move("L4", "2026-11-18T15:00:00", "application_submitted")
    await s.move("L1", "2026-11-20T15:00:00", "leased")
    await s.move("L6", "2026-11-20T18:00:00", "contacted")  # the lost lead reopens
    clock.set(t("2026-11-21T15:00:00"))  # L4's renter writes again, now from zillow: the last touch changes
    again = await deliver(
        client, sessionmaker, org.org_id, email="l4@example.com", source="zillow", property_id=uuid.UUID(harbor)
    )
    assert again["lead_id"] == s.leads["L4"]
    await s.move("L4", "2026-11-23T15:00:00", "leased")

    # the merge: L8's renter is L7's renter; both leads stay (different properties) and count once each
    contacts = {}
    for name in ("L7", "L8"):
        contacts[name] = (await client.get(f"/v1/leads/{s.leads[name]}", headers=org.headers)).json()["contact_id"]
    clock.set(t("2026-11-25T12:00:00"))
    merged = await client.post(
        f"/v1/contacts/{contacts['L7']}/merge", json={"merge_contact_id": contacts["L8"]}, headers=org.headers
    )
    assert merged.status_code == 201, merged.text

    # spend: zillow November and December, website November; zillow October is outside the window
    for source, month, amount in (
        ("zillow", "2026-11", 900),
        ("zillow", "2026-12", 300),
        ("website", "2026-11", 200),
        ("zillow", "2026-10", 5000),
    ):
        response = await client.put(
            f"/v1/sources/{source}/spend", json={"month": month, "amount": amount}, headers=org.headers
        )
        assert response.status_code == 200, response.text

    ids = {name: uuid.UUID(value) for name, value in s.leads.items()}
    async with sessionmaker() as session, session.begin():
        # first replies (messaging writes these): seconds after creation, automated / human
        replies = {"L1": (60, 600), "L2": (30, 7200), "L3": (None, 240), "L4": (120, 1800)}
        for name, (auto, human) in replies.items():
            lead = await session.get(Lead, ids[name])
            assert lead is not None
            created = lead.created_at
            values = [v for v in (auto, human) if v is not None]
            await session.execute(
                update(Lead)
                .where(Lead.id == ids[name])
                .values(
                    first_automated_response_at=created + timedelta(seconds=auto) if auto else None,
                    first_human_response_at=created + timedelta(seconds=human),
                    first_response_at=created + timedelta(seconds=min(values)),
                    first_response_seconds=min(values),
                )
            )
        # L5, L7, L8 wait in the pool (the creation rules had given them to the admin)
        await session.execute(update(Lead).where(Lead.id.in_([ids["L5"], ids["L7"], ids["L8"]])).values(owner_id=None))
        # next actions as the rules would have left them: L2 and L8 overdue at AS_OF, L5 due later, L6/L7 none
        due = {
            "L2": t("2026-11-30T00:00:00"),
            "L5": t("2026-12-02T00:00:00"),
            "L8": t("2026-11-25T00:00:00"),
            "L6": None,
            "L7": None,
        }
        for name, at in due.items():
            await session.execute(
                update(Lead)
                .where(Lead.id == ids[name])
                .values(next_action_type="call" if at else None, next_action_due_at=at)
            )
        # owners' events: SLA breaches (two at Summit, one at Harbor) and accepted offers (60, 120, 600 s)
        events = []
        for name, at, kind, data in (
            ("L2", "2026-11-10T10:00:00", "sla_breached", {}),
            ("L2", "2026-11-11T10:00:00", "sla_breached", {}),
            ("L7", "2026-11-19T10:00:00", "sla_breached", {}),
            ("L1", "2026-11-09T04:00:00", "offer_accepted", {"seconds": 60}),
            ("L2", "2026-11-09T08:00:00", "offer_accepted", {"seconds": 120}),
            (
                "L6",
                "2026-11-16T19:00:00",
                "offer_accepted",
                {"offered_at": "2026-11-16T18:00:00+00:00", "accepted_at": "2026-11-16T18:10:00+00:00"},
            ),
        ):
            lead = await session.get(Lead, ids[name])
            assert lead is not None
            events.append(
                {
                    "id": uuid.uuid4(),
                    "org_id": org.org_id,
                    "lead_id": lead.id,
                    "contact_id": lead.contact_id,
                    "type": kind,
                    "occurred_at": t(at),
                    "property_id": lead.property_id,
                    "data": data,
                }
            )
        await session.execute(insert(LeadEvent), events)
        # the review queue: two open items, the oldest a day old at AS_OF
        await session.execute(
            insert(ReviewItem),
            [
                {"id": uuid.uuid4(), "org_id": org.org_id, "created_at": t("2026-11-30T12:00:00"), "reasons": []},
                {"id": uuid.uuid4(), "org_id": org.org_id, "created_at": t("2026-12-01T06:00:00"), "reasons": []},
            ],
        )
        # deliveries: 3 processed in the last hour (lag 2, 4, 10 s), 2 anonymous calls ignored at Summit, 1 failed
        inbound = []
        for i, (status, received, lag, reason) in enumerate(
            (
                ("processed", "2026-12-01T11:10:00", 2, None),
                ("processed", "2026-12-01T11:20:00", 4, None),
                ("processed", "2026-12-01T11:30:00", 10, None),
                ("ignored", "2026-11-20T11:30:00", 1, "anonymous caller"),
                ("ignored", "2026-11-21T11:30:00", 1, "anonymous caller"),
                ("failed", "2026-11-22T11:30:00", None, "parse error"),
            )
        ):
            inbound.append(
                {
                    "id": uuid.uuid4(),
                    "org_id": org.org_id,
                    "kind": "twilio/voice",
                    "delivery_key": f"k{i}",
                    "content_type": "",
                    "headers": {},
                    "query": {},
                    "body": b"",
                    "body_size": 0,
                    "received_at": t(received),
                    "status": status,
                    "reason": reason,
                    "processed_at": t(received) + timedelta(seconds=lag) if lag else None,
                    "signal": {"property": {"property_id": summit}} if reason == "anonymous caller" else None,
                }
            )
        await session.execute(insert(InboundMessage), inbound)
        # Harbor's team works Mon–Fri 09:00–17:00 New York time (response time in working hours)
        await session.execute(
            insert(PropertyTeamMember),
            [
                {
                    "id": uuid.uuid4(),
                    "org_id": org.org_id,
                    "property_id": uuid.UUID(harbor),
                    "user_id": ana,
                    "working_hours": {
                        d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")
                    },
                }
            ],
        )
    clock.set(AS_OF)
    return s, {"harbor": harbor, "summit": summit, "ana": str(ana), "ben": str(ben)}


async def test_every_endpoint_gives_the_hand_computed_answer(
    client: httpx.AsyncClient, org: OrgFixture, clock: FakeClock, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    s, ref = await build(client, org, clock, sessionmaker)
    await check_all(s, ref)
    async with sessionmaker() as session, session.begin():
        assert await disagreements(session, org.org_id) == []
        await compact(session)  # folded or not, the same answers
        assert await disagreements(session, org.org_id) == []
    await check_all(s, ref)
    await check_raw_agrees(sessionmaker, org, ref)


FUNNEL = ("leads", "contacted", "tour_requested", "tour_booked", "toured", "applied", "leased", "lost", "no_owner")


async def check_all(s: Scenario, ref: dict[str, Any]) -> None:
    harbor, summit, ana, ben = ref["harbor"], ref["summit"], ref["ana"], ref["ben"]
    # cohort by source: zillow L1 (leased), L2 (contacted), L6 (lost then reopened: contacted, open);
    # website L3 (toured, lost), L5, L7, L8 (new, no owner); apartments L4 (leased)
    cohort = by_key(await s.get("funnel", group_by="source"))
    assert pick(cohort["zillow"], *FUNNEL) == (3, 3, 1, 1, 1, 1, 1, 0, 0)
    assert pick(cohort["website"], *FUNNEL) == (4, 1, 1, 1, 1, 0, 0, 1, 3)
    assert pick(cohort["apartments"], *FUNNEL) == (1, 1, 1, 1, 1, 1, 1, 0, 0)
    assert pick(cohort["zillow"], "lead_to_tour_rate", "tour_to_application_rate", "lead_to_lease_rate") == (
        0.3333,
        1.0,
        0.3333,
    )
    assert (await s.get("funnel", group_by="source"))["totals"]["leads"] == 8
    assert {k: v["leads"] for k, v in by_key(await s.get("funnel", group_by="property")).items()} == {
        harbor: 4,
        summit: 4,
    }
    owners = by_key(await s.get("funnel", group_by="owner"))
    assert {k: v["leads"] for k, v in owners.items()} == {ana: 3, ben: 2, "unassigned": 3}
    assert owners[ana]["owner_name"] == "Ana"
    # local weeks: W45 has L1 and L2 (Sunday evening locally, Monday in UTC)
    assert {k: v["leads"] for k, v in by_key(await s.get("funnel", group_by="week")).items()} == {
        "2026-W45": 2,
        "2026-W46": 2,
        "2026-W47": 3,
        "2026-W49": 1,
    }
    assert {k: v["leads"] for k, v in by_key(await s.get("funnel", group_by="month")).items()} == {"2026-11": 8}
    # filters
    [only] = (await s.get("funnel", group_by="none", property_id=summit, source="zillow"))["rows"]
    assert pick(only, "leads", "contacted", "lost") == (2, 2, 0)
    [tenants] = (await s.get("funnel", group_by="none", kind="tenant"))["rows"]
    assert tenants["leads"] == 8
    assert (await s.get("funnel", group_by="none", kind="owner"))["rows"] == []

    # activity: stage entries in the window
    activity = by_key(await s.get("funnel", view="activity", group_by="source"))
    names = ("leads", "contacted", "tour_booked", "toured", "applied", "leased", "lost", "reopened")
    assert pick(activity["zillow"], *names) == (3, 2, 0, 1, 1, 1, 1, 1)
    assert pick(activity["website"], *names) == (4, 0, 1, 1, 0, 0, 1, 0)
    assert pick(activity["apartments"], *names) == (1, 0, 0, 1, 1, 1, 0, 0)
    # a window with partial local days at both edges: Nov 16 00:00Z – Nov 21 00:00Z
    edge = {"from": "2026-11-16T00:00:00Z", "to": "2026-11-21T00:00:00Z", "group_by": "none"}
    [row] = (await s.get("funnel", view="activity", **edge))["rows"]
    assert pick(row, *names) == (3, 1, 0, 1, 1, 1, 1, 1)
    [row] = (await s.get("funnel", **edge))["rows"]
    assert pick(row, "leads", "contacted", "lost", "no_owner") == (3, 1, 0, 2)

    # response time: automated [30, 60, 120], human [240, 600, 1800, 7200], first [30, 60, 120, 240] of 8 leads
    [rt] = (await s.get("response-time"))["rows"]
    assert rt["leads"] == 8
    assert pick(
        rt["automated"], "responded", "median_seconds", "p90_seconds", "within_5_minutes_rate", "within_1_hour_rate"
    ) == (3, 60.0, 108.0, 0.375, 0.375)
    assert pick(
        rt["human"], "responded", "median_seconds", "p90_seconds", "within_5_minutes_rate", "within_1_hour_rate"
    ) == (4, 1200.0, 5580.0, 0.125, 0.375)
    assert pick(rt["first"], "responded", "median_seconds", "p90_seconds", "within_5_minutes") == (4, 90.0, 204.0, 4)
    assert rt["human"]["distribution"] == {
        "within_1_minute": 0,
        "within_5_minutes": 1,
        "within_15_minutes": 1,
        "within_1_hour": 1,
        "within_4_hours": 1,
        "within_24_hours": 0,
        "over_24_hours": 0,
    }
    assert rt["automated"]["distribution"]["within_1_minute"] == 2  # 30 s and 60 s
    assert by_key(await s.get("response-time", group_by="source"))["zillow"]["automated"]["median_seconds"] == 45.0
    # in Harbor's working hours: L1 arrived Sunday night (0 s counted), L4 on Tuesday at 10:00 (120 s / 1800 s)
    worked = by_key(await s.get("response-time", group_by="property", working_hours="true"))
    assert pick(worked[harbor]["automated"], "responded", "median_seconds") == (2, 60.0)
    assert pick(worked[harbor]["human"], "median_seconds", "within_5_minutes") == (900.0, 1)
    assert worked[harbor]["automated"]["distribution"]["within_1_minute"] == 1  # Sunday night: 0 s counted
    assert worked[summit]["human"]["median_seconds"] == 3720.0  # no hours at Summit: elapsed (240, 7200)
    assert by_key(await s.get("response-time", group_by="week"))["2026-W45"]["automated"]["responded"] == 2

    # attribution: L4 came from apartments and last touched from zillow; spend Nov+Dec zillow 1200, website 200
    attribution = by_key(await s.get("attribution"))
    assert pick(attribution["zillow"], "leads", "tours", "applications", "leases") == (3, 1, 1, 1)
    assert pick(attribution["zillow"], "last_touch_leads", "last_touch_tours", "last_touch_leases") == (4, 2, 2)
    assert pick(attribution["apartments"], "leads", "leases", "last_touch_leads", "last_touch_leases") == (1, 1, 0, 0)
    assert pick(attribution["zillow"], "spend", "cost_per_lead", "cost_per_tour", "cost_per_lease") == (
        1200.0,
        400.0,
        1200.0,
        1200.0,
    )
    assert pick(attribution["website"], "spend", "cost_per_lead", "cost_per_tour", "cost_per_lease") == (
        200.0,
        50.0,
        200.0,
        None,
    )
    assert attribution["apartments"]["spend"] is None

    # health at AS_OF (12:00 on Dec 1 UTC)
    health = (await s.get("health"))["totals"]
    assert pick(health, "open_leads", "no_owner", "no_next_action", "overdue_next_action") == (5, 3, 2, 2)
    assert health["sla_breaches"] == 3
    assert pick(health, "offers_accepted", "offer_acceptance_median_seconds", "offer_acceptance_p90_seconds") == (
        3,
        120.0,
        504.0,
    )
    assert pick(health, "review_open", "review_oldest_age_seconds") == (2, 86400)
    assert health["duplicates_prevented"] == 1  # L4's second signal landed on the known renter
    assert health["inbound_by_status"] == {"failed": 1, "ignored": 2, "processed": 3}
    assert pick(health, "intake_processed_last_hour", "intake_lag_p50_seconds", "intake_lag_p99_seconds") == (
        3,
        4.0,
        9.88,
    )
    assert health["anonymous_missed_calls_by_property"] == {summit: 2}
    at_summit = (await s.get("health", property_id=summit))["totals"]
    assert pick(at_summit, "open_leads", "no_owner", "sla_breaches", "anonymous_missed_calls") == (3, 1, 2, 2)


async def check_raw_agrees(
    sessionmaker: async_sessionmaker[AsyncSession], org: OrgFixture, ref: dict[str, Any]
) -> None:
    """The raw path (what a restricted caller gets) gives the same answers as the rollups."""
    windows = [
        (t("2026-11-01T00:00:00"), t("2026-12-15T00:00:00")),
        (t("2026-11-16T00:00:00"), t("2026-11-21T00:00:00")),
        (t("2026-11-09T05:00:00"), t("2026-11-20T13:30:00")),
    ]
    async with sessionmaker() as session:
        for start, end in windows:
            for prop in (None, uuid.UUID(ref["summit"])):
                rolled = queries.Filter(org.org_id, start, end, LeadScope(), property_id=prop)
                raw = queries.Filter(org.org_id, start, end, LeadScope(), property_id=prop, raw=True)
                for group in queries.GROUPS:
                    assert await queries.funnel_cohort(session, rolled, group) == await queries.funnel_cohort(
                        session, raw, group
                    )
                    assert await queries.funnel_activity(session, rolled, group) == await queries.funnel_activity(
                        session, raw, group
                    )
                assert await queries.attribution(session, rolled) == await queries.attribution(session, raw)
    _ = Principal
