"""Re-evaluation points (import, tour reschedule), a person taking over, and conditions on time and place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from shared.clock import FakeClock
from shared.config import Settings
from tests.automation.helpers import SessionMaker, add_agent, decisions, drain, lead_row, sent, signal, steps
from tests.conftest import OrgFixture


async def test_an_imported_lead_is_evaluated_for_its_imported_status(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    agent = await add_agent(sessionmaker, org)
    report = (
        await client.post(
            "/v1/leads/import",
            content=b"email,status\nimp1@example.com,qualified\nimp2@example.com,\n",
            headers={**org.headers, "content-type": "text/csv"},
        )
    ).json()
    assert report["created"] == 2, report
    qualified = await lead_row(sessionmaker, report["lead_ids"][0])
    fresh = await lead_row(sessionmaker, report["lead_ids"][1])
    assert (qualified.status, qualified.next_action_type, qualified.next_action_due_at) == (
        "qualified",
        "schedule_tour",
        clock.now() + timedelta(days=1),
    )
    assert (fresh.next_action_type, fresh.next_action_owner_id) == ("call", agent)


async def test_rescheduling_a_tour_moves_its_reminders_and_canceling_cancels_them(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    out = await signal(client, org, email="resched@example.com")
    first = clock.now() + timedelta(days=3)
    tour = (
        await client.post(
            f"/v1/leads/{out['lead_id']}/tours", json={"starts_at": first.isoformat()}, headers=org.headers
        )
    ).json()
    later = first + timedelta(days=2)
    moved = await client.patch(f"/v1/tours/{tour['id']}", json={"starts_at": later.isoformat()}, headers=org.headers)
    assert moved.status_code == 200
    reminders = [s for s in await steps(sessionmaker, out["lead_id"]) if s.rule_id.startswith("tour_reminder")]
    assert sorted((s.status, s.due_at) for s in reminders) == sorted(
        [
            ("canceled", first - timedelta(hours=24)),
            ("canceled", first - timedelta(hours=2)),
            ("pending", later - timedelta(hours=24)),
            ("pending", later - timedelta(hours=2)),
        ]
    )
    clock.advance(days=3)  # the first time passes: nothing about the old slot goes out
    await drain(settings, sessionmaker)
    assert "tour_reminder_2h" not in sent(await decisions(sessionmaker, lead_id=out["lead_id"]))
    await client.patch(f"/v1/tours/{tour['id']}", json={"status": "canceled"}, headers=org.headers)
    assert {s.status for s in await steps(sessionmaker, out["lead_id"]) if s.rule_id.startswith("tour_")} <= {
        "canceled",
        "done",
    }
    lead = await lead_row(sessionmaker, out["lead_id"])
    assert lead.next_action_type == "reschedule_tour"


async def test_a_person_taking_over_pauses_automation_until_handed_back(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, settings: Settings, clock: FakeClock
) -> None:
    await add_agent(sessionmaker, org)
    out = await signal(client, org, email="mine@example.com")
    clock.advance(days=7)
    await drain(settings, sessionmaker)
    await drain(settings, sessionmaker)
    taken = await client.post(f"/v1/leads/{out['lead_id']}/takeover", headers=org.headers)
    assert taken.status_code == 200, taken.text
    assert (taken.json()["type"], taken.json()["owner_id"], taken.json()["set_by"]) == (
        "reply",
        str(org.admin_user_id),
        "user",
    )
    assert {s.reason for s in await steps(sessionmaker, out["lead_id"]) if s.status == "suppressed"} == {
        "human_takeover"
    }
    await signal(client, org, email="mine@example.com", channel="web")
    assert sent(await decisions(sessionmaker, lead_id=out["lead_id"])) == ["ils_reply", "reactivation_1"]
    back = await client.delete(f"/v1/leads/{out['lead_id']}/takeover", headers=org.headers)
    assert back.status_code == 200
    assert (await lead_row(sessionmaker, out["lead_id"])).automation_paused_at is None


async def test_conditions_on_working_hours_and_source_decide_and_say_why(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: SessionMaker, clock: FakeClock
) -> None:
    rule: dict[str, Any] = {
        "id": "after_hours_ack",
        "name": "After hours: say when we open",
        "trigger": {"type": "event", "event": "inquiry"},
        "conditions": {"working_hours": "outside", "source": ["zillow"]},
        "actions": [{"type": "send_template", "template": "after_hours", "kind": "reply"}],
    }
    saved = await client.put("/v1/automation/rules", json={"rules": [rule]}, headers=org.headers)
    assert saved.status_code == 200, saved.text
    # CLOCK_START is a Tuesday afternoon in New York: the office is open
    result = (
        await client.post(
            "/v1/automation/rules/test", json={"event": "inquiry", "source": "zillow"}, headers=org.headers
        )
    ).json()
    [decision] = [d for d in result["decisions"] if d["rule"] == "after_hours_ack" and d["action"] is None]
    assert (decision["outcome"], decision["reason"], decision["version"]) == (
        "skipped",
        "condition working_hours: the office is open",
        1,
    )
    clock.advance(hours=8)  # 22:00 in New York
    result = (
        await client.post(
            "/v1/automation/rules/test", json={"event": "inquiry", "source": "zillow"}, headers=org.headers
        )
    ).json()
    [decision] = [d for d in result["decisions"] if d["rule"] == "after_hours_ack" and d["action"] is None]
    assert decision["outcome"] == "fired"
    result = (
        await client.post(
            "/v1/automation/rules/test", json={"event": "inquiry", "source": "website"}, headers=org.headers
        )
    ).json()
    [decision] = [d for d in result["decisions"] if d["rule"] == "after_hours_ack" and d["action"] is None]
    assert decision["reason"] == "condition source: website is not one of [zillow]"
