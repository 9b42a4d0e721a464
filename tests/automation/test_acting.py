"""The engine acts: its first replies are the renter's messages, a hand-over to a person is a review item, a
merge keeps one cadence per renter, an unanswered sensitive conversation reaches a manager, and a template's
application link is filled (or the step is held back, saying why)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from services.api.automation.merge import after_merge
from shared.clock import FakeClock
from shared.config import Settings
from shared.models import Lead, Notification, OutboundMessage, ReviewItem, ScheduledAction
from tests.automation.helpers import (
    APPLY_URL,
    SessionMaker,
    add_agent,
    drain,
    lead_row,
    set_application_url,
    signal,
    steps,
)
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_property


async def _outbox(sessionmaker: SessionMaker, **where: Any) -> list[OutboundMessage]:
    query = select(OutboundMessage).where(
        *[
            getattr(OutboundMessage, name) == (uuid.UUID(str(value)) if name.endswith("_id") else value)
            for name, value in where.items()
        ]
    )
    async with sessionmaker() as session:
        return list((await session.scalars(query.order_by(OutboundMessage.created_at))).all())


async def _log(client: httpx.AsyncClient, org: OrgFixture, lead_id: Any) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/leads/{lead_id}/automation-log", headers=org.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_renter_writing_to_two_properties_within_minutes_gets_one_first_reply(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    maple = await insert_property(sessionmaker, org.org_id, "Maple Court")
    birch = await insert_property(sessionmaker, org.org_id, "Birch Flats")
    email, phone = "two.props@example.com", "+17038684001"
    form = await signal(client, org, email=email, phone=phone, channel="web", source="website", property_id=maple)
    clock.advance(minutes=3)
    ils = await signal(client, org, email=email, phone=phone, channel="email", source="zillow", property_id=birch)
    assert form["contact_id"] == ils["contact_id"] and form["lead_id"] != ils["lead_id"]

    replies = await _outbox(sessionmaker, contact_id=form["contact_id"], kind="reply")
    assert [(m.lead_id, m.template, m.channel, m.status) for m in replies] == [
        (uuid.UUID(form["lead_id"]), "web_form_ack", "sms", "queued")
    ]
    # the acknowledgement asks the most valuable question not answered yet (no move-in date given)
    assert "When are you hoping to move in?" in replies[0].body and "Maple Court" in replies[0].body
    assert replies[0].rule is not None and replies[0].rule["id"] == "web_form"

    # the second touch's decision says why it did not send, naming the reply that covered it
    second = await _log(client, org, ils["lead_id"])
    [why] = [e for e in second if e["action"] == "send_template" and e["outcome"] == "suppressed"]
    assert (why["rule_id"], why["reason"], why["data"]["template"]) == ("ils_inquiry", "duplicate_touch", "ils_reply")
    assert why["data"]["covered_by"]["lead_id"] == form["lead_id"]
    first = await _log(client, org, form["lead_id"])
    [decided] = [e for e in first if e["action"] == "send_template" and e["outcome"] == "decided"]
    assert why["data"]["covered_by"]["log_id"] == decided["id"]
    assert replies[0].idempotency_key == f"automation:{why['data']['covered_by']['idempotency_key']}"
    # and it brings no second follow-up: one renter, one cadence
    [fired] = [e for e in second if e["rule_id"] == "ils_inquiry" and e["outcome"] == "fired"]
    [start] = [a for a in fired["data"]["actions"] if a["type"] == "start_sequence"]
    assert (start["outcome"], start["reason"]) == ("suppressed", "duplicate_touch")
    assert [s.sequence for s in await steps(sessionmaker, ils["lead_id"]) if s.sequence] == []
    assert [s.sequence for s in await steps(sessionmaker, form["lead_id"]) if s.sequence] == ["inquiry_follow_up"]


async def test_a_sensitive_web_form_gets_no_automated_first_reply(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    out = await signal(
        client, org, email="voucher@example.com", channel="web", source="website", message="Do you take section 8?"
    )
    [message] = await _outbox(sessionmaker, lead_id=out["lead_id"], kind="reply")
    assert message.template == "sensitive_ack"  # messaging's neutral acknowledgement, and nothing else
    [fired] = [e for e in await _log(client, org, out["lead_id"]) if e["rule_id"] == "web_form"]
    assert fired["data"]["actions"][0]["reason"] == "sensitive_conversation"


ESCALATE = {
    "id": "escalate_questions",
    "name": "Questions go to a person",
    "trigger": {"type": "event", "event": "question"},
    "actions": [{"type": "human_review", "reason": "a question a person should answer"}],
}


async def test_human_review_opens_a_review_item_and_automation_waits_for_a_person(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    saved = await client.put("/v1/automation/rules", json={"rules": [ESCALATE]}, headers=org.headers)
    assert saved.status_code == 200, saved.text
    email = "escalate@example.com"
    out = await signal(client, org, email=email, event="question", message="Can I sublet?")
    listed = await client.get("/v1/review-items?kind=automation_review", headers=org.headers)
    [item] = listed.json()["items"]
    assert (item["lead_id"], item["status"]) == (out["lead_id"], "open")
    assert item["reasons"][0]["reason"] == "a question a person should answer"
    assert item["reasons"][0]["rule"] == "escalate_questions"
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.automation_paused_reason, lead.next_action_type, lead.next_action_owner_id) == (
        "human_review",
        "review",
        agent,
    )
    async with sessionmaker() as session:
        told = list(await session.scalars(select(Notification).where(Notification.lead_id == lead.id)))
    assert [n.kind for n in told if n.kind.startswith("rule:")] == ["rule:escalate_questions"]

    # automation stops for the lead: the next touch gets no automated reply (suppressed, with the reason)
    clock.advance(hours=1)
    await signal(client, org, email=email, channel="web", source="website")
    [ack] = await _outbox(sessionmaker, lead_id=out["lead_id"], template="web_form_ack")
    assert (ack.status, ack.reason) == ("suppressed", "automation_paused: human_review")
    clock.advance(minutes=5)
    await signal(client, org, email=email, event="question", message="And parking?")
    listed = await client.get("/v1/review-items?kind=automation_review", headers=org.headers)
    assert [i["id"] for i in listed.json()["items"]] == [item["id"]]  # one open item, not one per touch

    resolved = await client.post(
        f"/v1/review-items/{item['id']}/resolve", json={"action": "resolve", "note": "answered"}, headers=org.headers
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert (await lead_row(sessionmaker, out["lead_id"])).automation_paused_at is None
    clock.advance(hours=1)
    await signal(client, org, email=email, channel="web", source="website")
    queued = [m for m in await _outbox(sessionmaker, lead_id=out["lead_id"], template="web_form_ack")]
    assert [m.status for m in queued] == ["suppressed", "queued"]


VIP = {
    "rules": [
        {
            "id": "vip_on_qualified",
            "name": "Qualified: a short drip",
            "trigger": {"type": "status", "status": "qualified"},
            "actions": [{"type": "start_sequence", "sequence": "vip"}],
        }
    ],
    "sequences": {
        "vip": {
            "name": "VIP drip",
            "steps": [
                {
                    "after_minutes": 2 * 24 * 60,
                    "grace_minutes": 24 * 60,
                    "actions": [{"type": "send_template", "template": "follow_up", "kind": "proactive"}],
                }
            ],
        }
    },
}


async def test_a_merge_moves_pending_steps_to_the_survivor_once_and_cancels_the_moot_ones(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    assert (await client.put("/v1/automation/rules", json=VIP, headers=org.headers)).status_code == 200
    maple = await insert_property(sessionmaker, org.org_id, "Maple Court")
    kept = await signal(
        client, org, email="ann.one@example.com", first_name="Ann", last_name="One", channel="web", property_id=maple
    )
    clock.advance(minutes=1)
    gone = await signal(
        client, org, email="ann.two@example.com", first_name="Annie", last_name="Two", channel="web", property_id=maple
    )
    assert kept["contact_id"] != gone["contact_id"]
    moved = await client.post(f"/v1/leads/{gone['lead_id']}/status", json={"status": "qualified"}, headers=org.headers)
    assert moved.status_code == 200, moved.text
    before = {s.id: s for s in await steps(sessionmaker, gone["lead_id"]) if s.status == "pending"}
    assert sorted((s.kind, s.sequence or s.rule_id) for s in before.values()) == [
        ("sequence_step", "inquiry_follow_up"),
        ("sequence_step", "vip"),
        ("time_rule", "stale_lead"),
    ]
    survivor_steps = [s for s in await steps(sessionmaker, kept["lead_id"]) if s.status == "pending"]

    merged = await client.post(
        f"/v1/contacts/{kept['contact_id']}/merge", json={"merge_contact_id": gone["contact_id"]}, headers=org.headers
    )
    assert merged.status_code == 201, merged.text
    assert (await lead_row(sessionmaker, gone["lead_id"])).lost_reason == "duplicate"  # folded into Ann's lead
    after = {s.id: s for s in await steps(sessionmaker, kept["lead_id"])} | {
        s.id: s for s in await steps(sessionmaker, gone["lead_id"])
    }
    vip = next(s for s in before.values() if s.sequence == "vip")
    assert (after[vip.id].lead_id, after[vip.id].status) == (uuid.UUID(kept["lead_id"]), "pending")  # moved
    follow_up = next(s for s in before.values() if s.sequence == "inquiry_follow_up")
    assert after[follow_up.id].status == "canceled"  # Ann had that step already: not doubled
    assert after[follow_up.id].reason == f"merged: duplicate of step {survivor_follow_up(survivor_steps).id}"
    stale = next(s for s in before.values() if s.rule_id == "stale_lead")
    assert (after[stale.id].status, after[stale.id].lead_id) == ("canceled", uuid.UUID(gone["lead_id"]))  # moot
    for step in survivor_steps:
        assert after[step.id].status == "pending"  # the survivor's own steps are untouched
    pending = [s for s in after.values() if s.status == "pending"]
    assert sorted(s.sequence or s.rule_id for s in pending) == ["inquiry_follow_up", "stale_lead", "vip"]
    assert {s.lead_id for s in pending} == {uuid.UUID(kept["lead_id"])}
    log = await _log(client, org, kept["lead_id"])
    assert any(e["outcome"] == "moved" and e["scheduled_action_id"] == str(vip.id) for e in log)

    # idempotent: running it again changes nothing
    async with sessionmaker() as session, session.begin():
        again = await after_merge(
            session,
            survivor_id=uuid.UUID(kept["contact_id"]),
            merged_lead_ids=[uuid.UUID(gone["lead_id"])],
            folded_lead_ids=[uuid.UUID(gone["lead_id"])],
            merge_id=uuid.UUID(merged.json()["id"]),
            now=clock.now(),
        )
    assert again == {"moved": 0, "canceled": 0}
    # one follow-up a day later, and the moved step goes to the survivor two days later: one renter, one cadence
    clock.advance(days=1)
    await drain(settings, sessionmaker)
    clock.advance(days=1, minutes=1)
    await drain(settings, sessionmaker)
    sent = await _outbox(sessionmaker, contact_id=kept["contact_id"], template="follow_up")
    assert [m.lead_id for m in sent] == [uuid.UUID(kept["lead_id"])] * 2
    assert sorted(m.rule["id"] for m in sent if m.rule) == ["inquiry_follow_up", "vip"]


def survivor_follow_up(rows: list[ScheduledAction]) -> ScheduledAction:
    return next(s for s in rows if s.sequence == "inquiry_follow_up")


async def test_an_unanswered_sensitive_conversation_tells_the_managers_once(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    late = await signal(client, org, email="late@example.com", message="Is there a ramp? I use a wheelchair.")
    on_time = await signal(
        client, org, email="ontime@example.com", message="Do you accept section 8?", first_name="Sam", last_name="Lee"
    )
    async with sessionmaker() as session:
        items = {
            item.lead_id: item
            for item in await session.scalars(select(ReviewItem).where(ReviewItem.kind == "sensitive_conversation"))
        }
    answered = await client.post(
        f"/v1/review-items/{items[uuid.UUID(on_time['lead_id'])].id}/resolve",
        json={"action": "resolve"},
        headers=org.headers,
    )
    assert answered.status_code == 200
    clock.advance(minutes=59)
    await drain(settings, sessionmaker)
    assert [(n.title, n.data) for n in await _breaches(sessionmaker, org)] == []  # not yet due
    clock.advance(minutes=2)
    await drain(settings, sessionmaker)
    clock.advance(minutes=30)
    await drain(settings, sessionmaker)
    breaches = await _breaches(sessionmaker, org)
    item = items[uuid.UUID(late["lead_id"])]
    assert [(n.user_id, n.lead_id, n.data["review_item_id"]) for n in breaches] == [
        (org.admin_user_id, uuid.UUID(late["lead_id"]), str(item.id))  # no manager: the organization's admin
    ]
    mails = await _outbox(sessionmaker, org_id=org.org_id, kind="notification", reason="notification:sla_breach")
    assert len(mails) == 1
    [row] = [s for s in await steps(sessionmaker, on_time["lead_id"]) if s.kind == "review_sla"]
    assert (row.status, row.reason) == ("canceled", "resolved_in_time")
    [decided] = [e for e in await _log(client, org, late["lead_id"]) if e["action"] == "notify"]
    assert (decided["rule_id"], decided["reason"]) == ("sensitive_conversation_sla", "sla_breach")
    assert decided["data"]["user_ids"] == [str(org.admin_user_id)]


async def _breaches(sessionmaker: SessionMaker, org: OrgFixture) -> list[Notification]:
    query = select(Notification).where(Notification.kind == "sla_breach", Notification.org_id == org.org_id)
    async with sessionmaker() as session:
        return list((await session.scalars(query)).all())


async def _toured(client: httpx.AsyncClient, org: OrgFixture, clock: FakeClock, **fields: Any) -> str:
    out = await signal(client, org, **fields)
    tour = await client.post(
        f"/v1/leads/{out['lead_id']}/tours",
        json={"starts_at": (clock.now() + timedelta(hours=1)).isoformat()},
        headers=org.headers,
    )
    assert tour.status_code == 201, tour.text
    clock.advance(hours=2)
    done = await client.patch(f"/v1/tours/{tour.json()['id']}", json={"status": "completed"}, headers=org.headers)
    assert done.status_code == 200, done.text
    return str(out["lead_id"])


async def test_the_application_link_is_the_propertys_else_the_organizations_else_the_step_waits(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    maple = await insert_property(sessionmaker, org.org_id, "Maple Court")
    birch = await insert_property(sessionmaker, org.org_id, "Birch Flats")
    unset = await _toured(client, org, clock, email="nolink@example.com", property_id=maple)
    assert await _outbox(sessionmaker, lead_id=unset, template="tour_follow_up_apply") == []
    [fired] = [e for e in await _log(client, org, unset) if e["rule_id"] == "toured" and e["outcome"] == "fired"]
    [held] = [a for a in fired["data"]["actions"] if a["type"] == "send_template"]
    assert (held["outcome"], held["reason"]) == ("skipped", "no_application_link")
    assert (await lead_row(sessionmaker, unset)).next_action_type == "follow_up"  # a person still follows up

    patched = await client.patch(
        f"/v1/properties/{maple}", json={"application_url": "https://apply.example/maple"}, headers=org.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["application_url"] == "https://apply.example/maple"
    bad = await client.patch(f"/v1/properties/{maple}", json={"application_url": "not a url"}, headers=org.headers)
    assert bad.status_code == 422
    await set_application_url(client, org)
    own = await _toured(client, org, clock, email="maple@example.com", property_id=maple)
    default = await _toured(client, org, clock, email="birch@example.com", property_id=birch)
    [mine] = await _outbox(sessionmaker, lead_id=own, template="tour_follow_up_apply")
    [theirs] = await _outbox(sessionmaker, lead_id=default, template="tour_follow_up_apply")
    assert "https://apply.example/maple" in mine.body and mine.status == "queued"
    assert APPLY_URL in theirs.body and theirs.status == "queued"


async def test_an_invitation_without_a_link_is_held_back_with_the_reason(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    invited = await client.post("/v1/leads/invitations", json={"emails": ["inv@example.com"]}, headers=org.headers)
    assert invited.status_code == 200, invited.text
    [held] = await _outbox(sessionmaker, org_id=org.org_id, template="invite_to_apply")
    assert (held.status, held.reason) == ("suppressed", "no_application_link")
    await set_application_url(client, org)
    clock.advance(minutes=1)  # the outbox is read in created_at order: the second invitation comes later
    again = await client.post("/v1/leads/invitations", json={"emails": ["inv2@example.com"]}, headers=org.headers)
    assert again.status_code == 200, again.text
    rows = await _outbox(sessionmaker, org_id=org.org_id, template="invite_to_apply")
    assert [(m.status, APPLY_URL in m.body) for m in rows] == [("suppressed", False), ("queued", True)]
    async with sessionmaker() as session:
        assert await session.scalar(select(Lead.id).where(Lead.org_id == org.org_id).limit(1)) is not None


async def test_a_text_inquiry_and_a_question_get_their_first_reply_and_a_person_answers(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    texted = await signal(
        client, org, phone="+17038684101", event="inquiry", channel="sms", source="sms", message="Still available?"
    )
    [ack] = await _outbox(sessionmaker, lead_id=texted["lead_id"], kind="reply")
    assert (ack.template, ack.channel, ack.rule["id"] if ack.rule else None) == (
        "inquiry_ack",
        "sms",
        "inquiry_text_ack",
    )
    assert "When are you hoping to move in?" in ack.body
    assert [s.sequence for s in await steps(sessionmaker, texted["lead_id"]) if s.sequence] == ["inquiry_follow_up"]
    asked = await signal(client, org, email="asks@example.com", event="question", message="Is parking included?")
    [answer] = await _outbox(sessionmaker, lead_id=asked["lead_id"], kind="reply")
    assert (answer.template, answer.channel) == ("question_ack", "email")
    lead = await lead_row(sessionmaker, asked["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "reply",
        clock.now() + timedelta(minutes=5),
        agent,
    )
