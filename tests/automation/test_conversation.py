"""One renter, one conversation; sequences that stop themselves; timed steps that survive and never go stale."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from shared.clock import FakeClock
from shared.config import Settings
from shared.models import AutomationLog, Lead, OutboundMessage, Task
from tests.automation.helpers import SessionMaker, add_agent, decisions, drain, lead_row, sent, signal, steps
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_property
from tests.signals.helpers import SERVICE_HEADERS, envelope


async def test_ils_email_web_form_and_missed_call_within_5_minutes_get_one_reply_and_one_call_task(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    other_property = await insert_property(sessionmaker, org.org_id, "Birch Flats")
    email, phone = "dana.one@example.com", "+17038683999"
    ils = await signal(client, org, email=email, phone=phone, channel="email", source="zillow")
    clock.advance(minutes=2)
    form = await signal(client, org, email=email, channel="web", source="website", property_id=other_property)
    clock.advance(minutes=2)
    call = await signal(
        client, org, phone=phone, event="missed_call", channel="phone", source="phone", first_name=None, last_name=None
    )
    assert ils["contact_id"] == form["contact_id"] == call["contact_id"]
    assert form["lead_id"] != ils["lead_id"]  # another property: another lead, the same renter
    entries = await decisions(sessionmaker, contact_id=ils["contact_id"])
    replies = [e for e in entries if e.outcome == "decided"]
    assert len(replies) == 1
    assert (replies[0].data["template"], replies[0].data["channel"]) == ("ils_reply", "sms")  # best channel
    suppressed = [e for e in entries if e.outcome == "suppressed"]
    assert [(e.rule_id, e.reason) for e in suppressed] == [
        ("web_form", "duplicate_touch"),
        ("missed_call_text_back", "duplicate_touch"),
    ]
    for entry in suppressed:
        assert entry.data["covered_by"]["idempotency_key"] == replies[0].data["idempotency_key"]
        assert entry.data["covered_by"]["log_id"] == str(replies[0].id)
    async with sessionmaker() as session:
        call_tasks = list(
            await session.scalars(
                select(Task)
                .join(Lead, Lead.id == Task.lead_id)
                .where(Lead.contact_id == uuid.UUID(ils["contact_id"]), Task.type == "call", Task.status == "open")
            )
        )
    assert len(call_tasks) == 1
    async with sessionmaker() as session:  # what the renter receives: the one reply, in the outbox
        outbox = list(
            await session.scalars(
                select(OutboundMessage).where(
                    OutboundMessage.contact_id == uuid.UUID(ils["contact_id"]), OutboundMessage.kind == "reply"
                )
            )
        )
    assert [(m.lead_id, m.template, m.status) for m in outbox] == [(uuid.UUID(ils["lead_id"]), "ils_reply", "queued")]
    assert outbox[0].idempotency_key == f"automation:{replies[0].data['idempotency_key']}"
    # the later touches are on the timeline all the same
    timeline = (await client.get(f"/v1/leads/{ils['lead_id']}/timeline", headers=org.headers)).json()["items"]
    assert {"inquiry", "missed_call"} <= {item["type"] for item in timeline}
    # outside the window, a new conversation gets its own reply
    clock.advance(minutes=31)
    await signal(client, org, email=email, channel="email", source="zillow", message="Still there?")
    assert len(sent(await decisions(sessionmaker, contact_id=ils["contact_id"]))) == 2


async def _stale_sequence(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: SessionMaker,
    settings: Settings,
    clock: FakeClock,
    email: str,
) -> str:
    await add_agent(sessionmaker, org)
    out = await signal(client, org, email=email, phone=None)
    clock.advance(days=7)
    await drain(settings, sessionmaker)
    await drain(settings, sessionmaker)
    assert sent(await decisions(sessionmaker, lead_id=out["lead_id"]))[-1] == "reactivation_1"
    return str(out["lead_id"])


async def test_a_reply_suppresses_the_rest_of_the_sequence_and_keeps_the_reason(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    lead_id = await _stale_sequence(client, org, sessionmaker, settings, clock, "reply.seq@example.com")
    clock.advance(hours=5)
    await signal(client, org, email="reply.seq@example.com", event="reply", channel="email", message="Yes!")
    sequence = [s for s in await steps(sessionmaker, lead_id) if s.sequence == "reactivation"]
    assert [(s.step, s.status, s.reason) for s in sequence] == [
        (1, "done", None),
        (2, "suppressed", "renter_replied"),
        (3, "suppressed", "renter_replied"),
    ]
    clock.advance(days=10)
    await drain(settings, sessionmaker)
    assert sent(await decisions(sessionmaker, lead_id=lead_id)).count("reactivation_2") == 0
    log = (await client.get(f"/v1/leads/{lead_id}/automation-log", headers=org.headers)).json()["items"]
    why = [e for e in log if e["outcome"] == "suppressed" and e["action"] == "sequence_step"]
    assert {(e["reason"], e["data"]["step"]) for e in why} == {("renter_replied", 2), ("renter_replied", 3)}
    timeline = (await client.get(f"/v1/leads/{lead_id}/timeline", headers=org.headers)).json()["items"]
    [stopped] = [item for item in timeline if item["type"] == "sequence_stopped"]
    assert stopped["data"] == {"sequence": "reactivation", "reason": "renter_replied", "steps": 2}


async def test_booking_a_tour_opting_out_or_a_person_taking_over_stop_the_sequence_with_their_reason(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    lead_id = await _stale_sequence(client, org, sessionmaker, settings, clock, "takeover@example.com")
    logged = await client.post(f"/v1/leads/{lead_id}/activities", json={"kind": "text"}, headers=org.headers)
    assert logged.status_code == 201
    assert {s.reason for s in await steps(sessionmaker, lead_id) if s.status == "suppressed"} == {"human_takeover"}
    lead_id = await _stale_sequence(client, org, sessionmaker, settings, clock, "booker@example.com")
    starts = (clock.now() + timedelta(days=2)).isoformat()
    await client.post(f"/v1/leads/{lead_id}/tours", json={"starts_at": starts}, headers=org.headers)
    assert {s.reason for s in await steps(sessionmaker, lead_id) if s.status == "suppressed"} == {"tour_booked"}


async def test_a_paused_lead_gets_no_automated_outreach(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    lead_id = await _stale_sequence(client, org, sessionmaker, settings, clock, "paused@example.com")
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Lead)
            .where(Lead.id == lead_id)
            .values(automation_paused_at=clock.now(), automation_paused_reason="sensitive_conversation")
        )
    clock.advance(days=2)
    await drain(settings, sessionmaker)
    [step2] = [s for s in await steps(sessionmaker, lead_id) if s.step == 2]
    assert (step2.status, step2.reason) == ("skipped", "automation_paused")
    out = await signal(client, org, email="paused@example.com", channel="web", source="website")
    assert out["lead_id"] == lead_id
    async with sessionmaker() as session:
        fired = await session.scalar(
            select(AutomationLog).where(
                AutomationLog.lead_id == lead_id, AutomationLog.rule_id == "web_form", AutomationLog.outcome == "fired"
            )
        )
    assert fired is not None
    assert fired.data["actions"][0] == {"type": "send_template", "outcome": "skipped", "reason": "automation_paused"}
    assert fired.data["actions"][1]["outcome"] == "done"  # a person still has the next step
    assert sent(await decisions(sessionmaker, lead_id=lead_id)) == ["ils_reply", "reactivation_1"]


async def test_after_downtime_a_step_later_than_its_grace_is_skipped_with_the_reason(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    out = await signal(client, org, email="downtime@example.com")
    clock.advance(days=9)  # the worker was down: the stale rule was due two days ago, grace one day
    await drain(settings, sessionmaker)
    [stale] = [s for s in await steps(sessionmaker, out["lead_id"]) if s.rule_id == "stale_lead"]
    assert stale.status == "skipped" and (stale.reason or "").startswith("stale: 2880 min late")
    assert sent(await decisions(sessionmaker, lead_id=out["lead_id"])) == ["ils_reply"]


async def test_two_workers_draining_at_once_run_each_step_once(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    leads = [await signal(client, org, email=f"pair{n}@example.com") for n in range(6)]
    clock.advance(days=7)
    await asyncio.gather(drain(settings, sessionmaker), drain(settings, sessionmaker))
    await asyncio.gather(drain(settings, sessionmaker), drain(settings, sessionmaker))
    for out in leads:
        assert sent(await decisions(sessionmaker, lead_id=out["lead_id"])) == ["ils_reply", "reactivation_1"]
        assert (await lead_row(sessionmaker, out["lead_id"])).next_action_type == "reactivation"


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split by a bad signal"])
async def test_one_batch_carrying_a_new_renters_three_touches_gets_one_reply_and_one_call_task(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock, split: bool
) -> None:
    """The same three doors as above, arriving in one intake batch: the first touch creates the renter (its
    checks are answered by what the batch itself decided), the next two find them (the database answers).

    Split: a bad signal in the middle fails the batch's first attempt (all signals under one savepoint), which
    rolls back and applies again with one savepoint per signal. Nothing of the first attempt may survive: not
    its rows, not what it remembered deciding (a remembered reply would suppress the real one)."""
    await add_agent(sessionmaker, org)
    other_property = await insert_property(sessionmaker, org.org_id, "Cedar Court")
    email, phone = "dana.batch@example.com", "+17038683998"
    bodies = [
        envelope(org.org_id, email=email, phone=phone, channel="email", source="zillow"),
        envelope(org.org_id, email=email, channel="web", source="website", property_id=other_property),
        envelope(
            org.org_id,
            phone=phone,
            event="missed_call",
            channel="phone",
            source="phone",
            first_name=None,
            last_name=None,
        ),
    ]
    if split:
        bodies.insert(1, envelope(uuid.uuid4(), email="nobody@example.com"))  # an organization that does not exist
    response = await client.post("/v1/internal/signals", json=bodies, headers=SERVICE_HEADERS)
    statuses = [r["status"] for r in response.json()]
    assert response.status_code == 200 and statuses == ([200, 404, 200, 200] if split else [200, 200, 200])
    outcomes = [r["outcome"] for r in response.json() if r["status"] == 200]
    assert outcomes[0]["contact_created"] and len({o["contact_id"] for o in outcomes}) == 1
    entries = await decisions(sessionmaker, contact_id=outcomes[0]["contact_id"])
    replies = [e for e in entries if e.outcome == "decided"]
    assert [(e.data["template"], e.lead_id) for e in replies] == [("ils_reply", uuid.UUID(outcomes[0]["lead_id"]))]
    suppressed = [e for e in entries if e.outcome == "suppressed"]
    assert sorted((e.rule_id, e.reason) for e in suppressed) == [  # one instant: no order between the two
        ("missed_call_text_back", "duplicate_touch"),
        ("web_form", "duplicate_touch"),
    ]
    assert all(e.data["covered_by"]["log_id"] == str(replies[0].id) for e in suppressed)
    async with sessionmaker() as session:
        call_tasks = list(
            await session.scalars(
                select(Task)
                .join(Lead, Lead.id == Task.lead_id)
                .where(Lead.contact_id == uuid.UUID(outcomes[0]["contact_id"]), Task.type == "call")
            )
        )
    assert len(call_tasks) == 1
    async with sessionmaker() as session:  # the renter's outbox: the one reply, whichever attempt applied it
        to_renter = list(
            await session.scalars(
                select(OutboundMessage.template).where(
                    OutboundMessage.contact_id == uuid.UUID(outcomes[0]["contact_id"])
                )
            )
        )
    assert to_renter == ["ils_reply"]
