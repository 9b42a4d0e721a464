"""One test per default rule: it fires on its event with the right action, due time and owner."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from shared.clock import FakeClock
from shared.config import Settings
from shared.models import OutboundMessage
from tests.automation.helpers import (
    APPLY_URL,
    SessionMaker,
    add_agent,
    decisions,
    drain,
    lead_row,
    sent,
    set_application_url,
    signal,
    steps,
    tasks,
)
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_property


async def test_missed_call_texts_back_and_creates_one_call_task(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(client, org, phone="+17038683162", event="missed_call", channel="phone", source="phone")
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at) == ("call", clock.now() + timedelta(minutes=5))
    assert lead.owner_id == agent and lead.next_action_owner_id == agent
    [task] = await tasks(sessionmaker, lead.id)
    assert (task.type, task.status, task.due_at, task.owner_id, task.rule) == (
        "call",
        "open",
        clock.now(),
        agent,
        "missed_call",
    )
    [decision] = await decisions(sessionmaker, lead_id=lead.id)
    assert (decision.data["template"], decision.data["channel"], decision.data["kind"]) == (
        "missed_call_text_back",
        "sms",
        "reply",
    )
    assert decision.rule_id == "missed_call_text_back" and decision.data["idempotency_key"]


async def test_web_form_acknowledges_and_asks_the_most_valuable_missing_question(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(
        client,
        org,
        email="form@example.com",
        channel="web",
        source="website",
        preferences={"move_in_date": "2026-08-01", "bedrooms": 2},
    )
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at) == ("reply", clock.now() + timedelta(minutes=15))
    assert lead.next_action_owner_id == agent
    [decision] = await decisions(sessionmaker, lead_id=lead.id)
    assert (decision.data["template"], decision.data["channel"], decision.data["ask"]) == (
        "web_form_ack",
        "email",
        "budget",
    )


async def test_ils_inquiry_records_source_lands_in_the_property_pipeline_and_replies(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    property_id = await insert_property(sessionmaker, org.org_id)
    out = await signal(client, org, email="ils@example.com", channel="email", source="zillow", property_id=property_id)
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.source, lead.property_id, lead.status) == ("zillow", property_id, "new")
    assert (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "reply",
        clock.now() + timedelta(minutes=5),
        agent,
    )
    assert sent(await decisions(sessionmaker, lead_id=lead.id)) == ["ils_reply"]


async def test_tour_request_confirms_a_given_time_or_creates_a_scheduling_task(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    timed = await signal(
        client,
        org,
        email="timed@example.com",
        event="tour_request",
        channel="web",
        preferences={"preferred_tour_times": ["Saturday 10am"]},
    )
    lead = await lead_row(sessionmaker, timed["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "confirm_tour",
        clock.now() + timedelta(minutes=15),
        agent,
    )
    assert [(t.type, t.title) for t in await tasks(sessionmaker, lead.id)] == [
        ("tour", "Confirm the requested tour time")
    ]
    assert sent(await decisions(sessionmaker, lead_id=lead.id)) == ["tour_request_confirm"]
    untimed = await signal(client, org, email="untimed@example.com", event="tour_request", channel="web")
    lead = await lead_row(sessionmaker, untimed["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at) == ("schedule_tour", clock.now() + timedelta(minutes=15))
    assert [t.title for t in await tasks(sessionmaker, lead.id)] == ["Schedule the requested tour"]


async def test_tour_booked_makes_the_tour_the_next_step_and_reminds_24h_and_2h_before(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(client, org, email="booked@example.com", event="tour_request", channel="web")
    starts = clock.now() + timedelta(days=3)
    booked = await client.post(
        f"/v1/leads/{out['lead_id']}/tours", json={"starts_at": starts.isoformat()}, headers=org.headers
    )
    assert booked.status_code == 201, booked.text
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.status, lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "tour_booked",
        "tour",
        starts,
        agent,
    )
    assert [t.status for t in await tasks(sessionmaker, lead.id)] == ["canceled"]  # the scheduling task is done
    reminders = [
        s for s in await steps(sessionmaker, lead.id) if s.status == "pending" and s.rule_id.startswith("tour")
    ]
    assert [(s.rule_id, s.due_at) for s in reminders] == [
        ("tour_reminder_24h", starts - timedelta(hours=24)),
        ("tour_reminder_2h", starts - timedelta(hours=2)),
    ]
    clock.advance(days=2)
    await drain(settings, sessionmaker)
    assert sent(await decisions(sessionmaker, lead_id=lead.id))[-1] == "tour_reminder_24h"
    clock.advance(hours=22)
    await drain(settings, sessionmaker)
    assert sent(await decisions(sessionmaker, lead_id=lead.id))[-1] == "tour_reminder_2h"
    # the decisions reached the outbox: rows to the renter, rendered, in order
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(OutboundMessage.template, OutboundMessage.kind, OutboundMessage.body)
                .where(OutboundMessage.lead_id == lead.id, OutboundMessage.template.like("tour_reminder%"))
                .order_by(OutboundMessage.created_at)
            )
        ).all()
    assert [(row.template, row.kind) for row in rows] == [
        ("tour_reminder_24h", "proactive"),
        ("tour_reminder_2h", "proactive"),
    ]
    assert all("tour" in row.body and "{{" not in row.body for row in rows)


async def test_toured_follows_up_with_the_application_link(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    await set_application_url(client, org)
    out = await signal(client, org, email="toured@example.com")
    tour = await client.post(
        f"/v1/leads/{out['lead_id']}/tours",
        json={"starts_at": (clock.now() + timedelta(hours=1)).isoformat()},
        headers=org.headers,
    )
    clock.advance(hours=2)
    done = await client.patch(f"/v1/tours/{tour.json()['id']}", json={"status": "completed"}, headers=org.headers)
    assert done.status_code == 200
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.status, lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "toured",
        "follow_up",
        clock.now() + timedelta(days=1),
        agent,
    )
    assert sent(await decisions(sessionmaker, lead_id=lead.id))[-1] == "tour_follow_up_apply"
    async with sessionmaker() as session:
        [message] = await session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.lead_id == lead.id, OutboundMessage.template == "tour_follow_up_apply"
            )
        )
    assert APPLY_URL in message.body and message.status == "queued"


async def test_no_show_offers_to_reschedule(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(client, org, email="noshow@example.com")
    tour = await client.post(
        f"/v1/leads/{out['lead_id']}/tours",
        json={"starts_at": (clock.now() + timedelta(days=2)).isoformat()},
        headers=org.headers,
    )
    clock.advance(days=2, hours=1)
    await client.patch(f"/v1/tours/{tour.json()['id']}", json={"status": "no_show"}, headers=org.headers)
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "reschedule_tour",
        clock.now() + timedelta(hours=1),
        agent,
    )
    assert sent(await decisions(sessionmaker, lead_id=lead.id))[-1] == "tour_reschedule_offer"
    # the no-show canceled the tour's remaining reminder instead of reminding about a tour that did not happen
    assert {s.status for s in await steps(sessionmaker, lead.id) if s.rule_id.startswith("tour_reminder")} <= {
        "done",
        "canceled",
        "skipped",
    }


async def test_stale_lead_is_reactivated_after_n_days_with_a_day_1_3_7_sequence(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(client, org, email="stale@example.com", phone="+17038680001")
    clock.advance(days=6, hours=23)
    await drain(settings, sessionmaker)
    assert (await lead_row(sessionmaker, out["lead_id"])).next_action_type == "reply"  # not yet
    clock.advance(hours=1)
    await drain(settings, sessionmaker)
    await drain(settings, sessionmaker)  # the first step, due at once
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "reactivation",
        clock.now(),
        agent,
    )
    assert sent(await decisions(sessionmaker, lead_id=lead.id)) == ["ils_reply", "reactivation_1"]
    timeline = (await client.get(f"/v1/leads/{lead.id}/timeline", headers=org.headers)).json()["items"]
    assert {"reactivated", "sequence_started"} <= {item["type"] for item in timeline}
    clock.advance(days=2)
    await drain(settings, sessionmaker)
    clock.advance(days=4)
    await drain(settings, sessionmaker)
    assert sent(await decisions(sessionmaker, lead_id=lead.id))[1:] == [
        "reactivation_1",
        "reactivation_2",
        "reactivation_3",
    ]
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at) == ("call", clock.now())


async def test_application_started_reminds_of_missing_steps_until_submitted(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    await set_application_url(client, org)
    out = await signal(client, org, email="apply@example.com", event="application", channel="web")
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.status, lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "application_started",
        "application_reminder",
        clock.now() + timedelta(days=1),
        agent,
    )
    clock.advance(days=1)
    await drain(settings, sessionmaker)
    assert sent(await decisions(sessionmaker, lead_id=lead.id)) == ["application_missing_steps"]
    moved = await client.post(
        f"/v1/leads/{lead.id}/status", json={"status": "application_submitted"}, headers=org.headers
    )
    assert moved.status_code == 200
    assert moved.json()["next_action"]["type"] == "review_application"
    clock.advance(days=3)
    await drain(settings, sessionmaker)
    assert sent(await decisions(sessionmaker, lead_id=lead.id)) == ["application_missing_steps"]  # no day-3 nag
    [day3] = [s for s in await steps(sessionmaker, lead.id) if s.rule_id == "application_reminder_3d"]
    assert day3.status == "canceled" and "anchor_moved" in (day3.reason or "")


async def test_unqualified_stops_sales_follow_up_and_moves_to_nurture(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(client, org, phone="+17038680002", event="missed_call", channel="phone", source="phone")
    moved = await client.post(
        f"/v1/leads/{out['lead_id']}/status",
        json={"status": "nurture", "lost_reason": "not_qualified"},
        headers=org.headers,
    )
    assert moved.status_code == 200, moved.text
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.status, lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "nurture",
        "nurture",
        clock.now() + timedelta(days=30),
        agent,
    )
    assert [t.status for t in await tasks(sessionmaker, lead.id)] == ["canceled"]
    assert lead.next_action_source is not None and lead.next_action_source["rule"] == "unqualified"


async def test_a_manually_added_lead_gets_a_next_action_with_due_time_and_owner(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    created = await client.post(
        "/v1/leads", json={"first_name": "Walk", "email": "walk@example.com"}, headers=org.headers
    )
    assert created.status_code == 201, created.text
    next_action = created.json()["next_action"]
    assert next_action["type"] == "call"
    assert next_action["owner_id"] == str(agent)
    lead = await lead_row(sessionmaker, created.json()["id"])
    assert lead.next_action_due_at == clock.now() + timedelta(hours=1)


async def test_a_closed_lead_has_no_next_action_and_its_rule_tasks_and_steps_end(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    out = await signal(client, org, phone="+17038680003", event="missed_call", channel="phone", source="phone")
    lost = await client.post(
        f"/v1/leads/{out['lead_id']}/status",
        json={"status": "lost", "lost_reason": "rented_elsewhere"},
        headers=org.headers,
    )
    assert lost.json()["next_action"] is None
    assert [t.status for t in await tasks(sessionmaker, out["lead_id"])] == ["canceled"]
    assert {s.status for s in await steps(sessionmaker, out["lead_id"])} == {"suppressed"}


async def test_staff_activities_are_human_responses_and_move_to_a_tour(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(client, org, email="staff@example.com")
    clock.advance(minutes=3)
    for kind in ("email", "text"):
        logged = await client.post(f"/v1/leads/{out['lead_id']}/activities", json={"kind": kind}, headers=org.headers)
        assert logged.status_code == 201, logged.text
        assert logged.json()["type"] == {"email": "email_out", "text": "sms_out"}[kind]
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert lead.first_human_response_at == clock.now()
    assert (lead.status, lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "contacted",
        "schedule_tour",
        clock.now() + timedelta(days=2),
        agent,
    )


@pytest.mark.parametrize(
    ("event", "channel", "rule", "action", "minutes"),
    [
        ("question", "email", "question", "reply", 5),
        ("sms_inbound", "sms", "sms_in", "reply", 5),
        ("reply", "email", "email_in", "reply", 15),
        ("call", "phone", "call_answered", "schedule_tour", 240),
        ("inquiry", "sms", "inquiry_other", "reply", 5),
    ],
)
async def test_touch_rules_set_their_next_action(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: SessionMaker,
    clock: FakeClock,
    event: str,
    channel: str,
    rule: str,
    action: str,
    minutes: int,
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(client, org, phone="+17038685555", event=event, channel=channel)
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        action,
        clock.now() + timedelta(minutes=minutes),
        agent,
    )
    assert lead.next_action_source is not None and lead.next_action_source["rule"] == rule


@pytest.mark.parametrize(
    ("status", "rule", "action", "minutes"),
    [
        ("qualified", "qualified", "schedule_tour", 24 * 60),
        ("tour_requested", "tour_requested", "confirm_tour", 15),
        ("nurture", "nurture", "nurture", 14 * 24 * 60),
        ("application_submitted", "application_submitted", "review_application", 24 * 60),
    ],
)
async def test_status_rules_set_their_next_action(
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: SessionMaker,
    clock: FakeClock,
    status: str,
    rule: str,
    action: str,
    minutes: int,
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(client, org, email="status.rule@example.com")
    clock.advance(minutes=10)
    moved = await client.post(f"/v1/leads/{out['lead_id']}/status", json={"status": status}, headers=org.headers)
    assert moved.status_code == 200, moved.text
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        action,
        clock.now() + timedelta(minutes=minutes),
        agent,
    )
    assert lead.next_action_source is not None and lead.next_action_source["rule"] == rule
