"""Rules as data through the API: read, override (validated, versioned), dry run, and the explanations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from shared.clock import FakeClock
from shared.models import AutomationLog, Lead, ScheduledAction, Task
from tests.automation.helpers import SessionMaker, add_agent, decisions, lead_row, sent, signal
from tests.conftest import OrgFixture
from tests.leads.helpers import insert_property

MISSED_CALL_OVERRIDE: dict[str, Any] = {
    "id": "missed_call",
    "name": "Missed call: call back within 2 minutes",
    "trigger": {"type": "event", "event": "missed_call"},
    "actions": [
        {"type": "create_task", "task_type": "call", "title": "Call back now"},
        {"type": "set_next_action", "action": "call", "due_in_minutes": 2},
    ],
}


async def test_defaults_are_readable_and_an_override_is_a_new_kept_version(
    client: httpx.AsyncClient, org: OrgFixture
) -> None:
    got = await client.get("/v1/automation/rules", headers=org.headers)
    assert got.status_code == 200
    body = got.json()
    assert (body["scope"], body["version"], body["versions"]) == ("organization", 0, [])
    ids = {item["rule"]["id"] for item in body["effective"]}
    assert {"missed_call", "web_form", "ils_inquiry", "tour_booked", "stale_lead", "unqualified"} <= ids
    assert "reactivation" in body["sequences"]
    first = await client.put("/v1/automation/rules", json={"rules": [MISSED_CALL_OVERRIDE]}, headers=org.headers)
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    [rule] = [item for item in first.json()["effective"] if item["rule"]["id"] == "missed_call"]
    assert (rule["scope"], rule["version"]) == ("org", 1)
    second = await client.put("/v1/automation/rules", json={"rules": []}, headers=org.headers)
    assert second.json()["version"] == 2
    assert [v["version"] for v in second.json()["versions"]] == [2, 1]
    old = await client.get("/v1/automation/rules?version=1", headers=org.headers)
    assert old.json()["document"]["rules"][0]["name"] == MISSED_CALL_OVERRIDE["name"]


async def test_a_bad_rule_is_a_422_naming_the_field(client: httpx.AsyncClient, org: OrgFixture) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"rules": [{**MISSED_CALL_OVERRIDE, "trigger": {"type": "event", "event": "nope"}}]},
            "body.rules.0.trigger.event.event",
        ),
        (
            {"rules": [{**MISSED_CALL_OVERRIDE, "actions": [{"type": "set_next_action", "action": "dance"}]}]},
            "body.rules.0.actions.0.set_next_action.action",
        ),
        (
            {"rules": [{**MISSED_CALL_OVERRIDE, "conditions": {"channel": ["pigeon"]}}]},
            "body.rules.0.conditions.channel.0",
        ),
        (
            {"rules": [{**MISSED_CALL_OVERRIDE, "actions": [{"type": "start_sequence", "sequence": "ghost"}]}]},
            "body.rules.0.actions.0.sequence",
        ),
        ({"rules": [MISSED_CALL_OVERRIDE, MISSED_CALL_OVERRIDE]}, "body.rules.1.id"),
        ({"rules": [{**MISSED_CALL_OVERRIDE, "id": "Bad Id"}]}, "body.rules.0.id"),
    ]
    for document, field in cases:
        response = await client.put("/v1/automation/rules", json=document, headers=org.headers)
        assert response.status_code == 422, (field, response.text)
        assert field in [error["field"] for error in response.json()["errors"]], response.json()
    assert (await client.get("/v1/automation/rules", headers=org.headers)).json()["version"] == 0


async def test_a_property_overrides_the_organization(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    property_id = await insert_property(sessionmaker, org.org_id)
    put = await client.put(
        f"/v1/automation/rules?property_id={property_id}", json={"rules": [MISSED_CALL_OVERRIDE]}, headers=org.headers
    )
    assert put.status_code == 200 and put.json()["scope"] == "property"
    foreign = await client.put(
        f"/v1/automation/rules?property_id={property_id}", json={"rules": []}, headers=other_org.headers
    )
    assert foreign.status_code == 404
    here = await signal(
        client, org, phone="+17038681111", event="missed_call", channel="phone", property_id=property_id
    )
    elsewhere = await signal(client, org, phone="+17038682222", event="missed_call", channel="phone")
    lead = await lead_row(sessionmaker, here["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "call",
        clock.now() + timedelta(minutes=2),
        agent,
    )
    assert (await lead_row(sessionmaker, elsewhere["lead_id"])).next_action_due_at == clock.now() + timedelta(minutes=5)
    explained = (await client.get(f"/v1/leads/{lead.id}/next-action", headers=org.headers)).json()
    assert explained["rule"] == {
        "id": "missed_call",
        "name": MISSED_CALL_OVERRIDE["name"],
        "version": 1,
        "scope": f"property:{property_id}",
    }


async def test_the_explanation_endpoints_name_the_rule_and_version(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    out = await signal(client, org, phone="+17038683333", event="missed_call", channel="phone", source="phone")
    explained = await client.get(f"/v1/leads/{out['lead_id']}/next-action", headers=org.headers)
    assert explained.status_code == 200
    body = explained.json()
    assert (body["type"], body["owner_id"], body["set_by"], body["trigger"]) == (
        "call",
        str(agent),
        "rule",
        "missed_call",
    )
    assert body["rule"] == {"id": "missed_call", "name": "Missed call: call back", "version": 1, "scope": "default"}
    assert [step["rule"] for step in body["pending_steps"]] == ["stale_lead"]
    log = (await client.get(f"/v1/leads/{out['lead_id']}/automation-log", headers=org.headers)).json()["items"]
    by_rule = {(e["rule_id"], e["outcome"]) for e in log if e["action"] is None}
    assert {("missed_call", "fired"), ("missed_call_text_back", "fired")} <= by_rule
    [decision] = [e for e in log if e["action"] == "send_template"]
    assert (decision["rule_id"], decision["rule_version"], decision["data"]["template"]) == (
        "missed_call_text_back",
        1,
        "missed_call_text_back",
    )
    # opted out: the text-back rule is skipped, and the log says why
    await signal(
        client,
        org,
        phone="+17038683333",
        event="opt_out",
        channel="sms",
        message="STOP",
        first_name=None,
        last_name=None,
    )
    clock.advance(hours=1)
    await signal(
        client, org, phone="+17038683333", event="missed_call", channel="phone", first_name=None, last_name=None
    )
    log = (await client.get(f"/v1/leads/{out['lead_id']}/automation-log", headers=org.headers)).json()["items"]
    [skipped] = [e for e in log if e["rule_id"] == "missed_call_text_back" and e["outcome"] == "skipped"]
    assert "cannot receive texts" in skipped["reason"]
    manual = await client.patch(
        f"/v1/leads/{out['lead_id']}", json={"next_action": {"type": "call"}}, headers={**org.headers, "If-Match": "*"}
    )
    assert manual.status_code == 200, manual.text
    body = (await client.get(f"/v1/leads/{out['lead_id']}/next-action", headers=org.headers)).json()
    assert (body["set_by"], body["rule"]) == ("user", None)
    assert (await client.get(f"/v1/leads/{out['lead_id']}/next-action", headers={})).status_code == 401


async def _counts(sessionmaker: SessionMaker, org: OrgFixture) -> tuple[int, ...]:
    async with sessionmaker() as session:
        counts = []
        for model in (Lead, Task, ScheduledAction, AutomationLog):
            query = select(func.count()).select_from(model).where(model.org_id == org.org_id)  # type: ignore[attr-defined]
            counts.append(int(await session.scalar(query) or 0))
        return tuple(counts)


async def test_a_dry_run_answers_what_would_happen_and_changes_nothing(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    out = await signal(client, org, email="dry@example.com")
    before = await _counts(sessionmaker, org)
    lead_before = await lead_row(sessionmaker, out["lead_id"])
    sample = await client.post(
        "/v1/automation/rules/test", json={"event": "missed_call", "channel": "phone"}, headers=org.headers
    )
    assert sample.status_code == 200, sample.text
    result = sample.json()
    fired = {(d["rule"], d["version"]) for d in result["decisions"] if d["outcome"] == "fired"}
    assert {("missed_call", 1), ("missed_call_text_back", 1)} <= fired
    assert result["next_action"]["type"] == "call"
    on_lead = await client.post(
        "/v1/automation/rules/test", json={"lead_id": out["lead_id"], "status": "lost"}, headers=org.headers
    )
    assert on_lead.status_code == 200, on_lead.text
    assert on_lead.json()["next_action"] is None
    tried = await client.post(
        "/v1/automation/rules/test",
        json={"event": "missed_call", "document": {"rules": [MISSED_CALL_OVERRIDE]}},
        headers=org.headers,
    )
    assert {(d["rule"], d["scope"]) for d in tried.json()["decisions"] if d["outcome"] == "fired"} >= {
        ("missed_call", "org")
    }
    assert await _counts(sessionmaker, org) == before
    lead_after = await lead_row(sessionmaker, out["lead_id"])
    assert (lead_after.status, lead_after.version, lead_after.next_action_type) == (
        lead_before.status,
        lead_before.version,
        lead_before.next_action_type,
    )
    bad = await client.post("/v1/automation/rules/test", json={"event": "nope"}, headers=org.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.event"


async def test_a_status_label_carries_an_action_plan(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    label = await client.post(
        "/v1/status-labels", json={"label": "Hot prospect", "canonical_status": "qualified"}, headers=org.headers
    )
    label_id = label.json()["id"]
    plan = {
        "actions": [
            {"type": "create_task", "task_type": "call", "title": "Call the hot prospect today"},
            {"type": "set_next_action", "action": "call", "due_in_minutes": 30},
            {"type": "notify", "title": "A hot prospect"},
        ]
    }
    saved = await client.put(f"/v1/status-labels/{label_id}/action-plan", json=plan, headers=org.headers)
    assert saved.status_code == 200, saved.text
    again = await client.put(f"/v1/status-labels/{label_id}/action-plan", json=plan, headers=org.headers)
    assert (again.json()["version"], again.json()["versions"]) == (2, [2, 1])
    bad = await client.put(
        f"/v1/status-labels/{label_id}/action-plan",
        json={"actions": [{"type": "start_sequence", "sequence": "ghost"}]},
        headers=org.headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.actions.0.sequence"
    out = await signal(client, org, email="hot@example.com")
    moved = await client.post(
        f"/v1/leads/{out['lead_id']}/status",
        json={"status": "qualified", "status_label_id": label_id},
        headers=org.headers,
    )
    assert moved.status_code == 200, moved.text
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert (lead.next_action_type, lead.next_action_due_at, lead.next_action_owner_id) == (
        "call",
        clock.now() + timedelta(minutes=30),
        agent,
    )
    explained = (await client.get(f"/v1/leads/{lead.id}/next-action", headers=org.headers)).json()
    assert (explained["rule"]["scope"], explained["rule"]["version"]) == ("status_label", 2)
    log = (await client.get(f"/v1/leads/{lead.id}/automation-log", headers=org.headers)).json()["items"]
    assert any(e["action"] == "notify" and e["data"]["user_ids"] == [str(agent)] for e in log)
    assert sent(await decisions(sessionmaker, lead_id=lead.id)) == ["ils_reply"]


async def test_the_automation_log_pages_by_an_iso_date_time_and_refuses_a_number(
    client: httpx.AsyncClient, org: OrgFixture, clock: FakeClock
) -> None:
    """`before` is an ISO 8601 date-time (the schema's promise); pydantic's lax mode would read a number as a Unix
    time, so `before=6385038` answered 200 (schemathesis found it)."""
    out = await signal(client, org, phone="+17038684444", event="missed_call", channel="phone", source="phone")
    path = f"/v1/leads/{out['lead_id']}/automation-log"
    everything = (await client.get(path, headers=org.headers)).json()["items"]
    assert everything
    later = (clock.now() + timedelta(days=1)).isoformat()
    assert (await client.get(path, params={"before": later}, headers=org.headers)).json()["items"] == everything
    earlier = (clock.now() - timedelta(days=1)).isoformat()
    assert (await client.get(path, params={"before": earlier}, headers=org.headers)).json()["items"] == []
    for number in ("6385038", "0.5", "1e3"):
        refused = await client.get(path, params={"before": number}, headers=org.headers)
        assert refused.status_code == 422, number
        assert refused.json()["errors"][0]["field"] == "query.before"
