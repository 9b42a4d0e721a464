"""Property: whatever happens, in whatever order, every open lead has a next action with a due time and an
owner, and no closed lead keeps a next action, pending timed steps or open rule tasks."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shared.clock import FakeClock
from shared.config import Settings
from shared.models import Lead, ScheduledAction, Task
from tests.automation.helpers import SessionMaker, add_agent, drain, signal
from tests.conftest import make_org

RENTERS = [("ava@example.com", "+17038684001"), (None, "+17038684002"), ("cy@example.com", None)]
EVENTS = ["inquiry", "missed_call", "tour_request", "application", "reply", "opt_out", "question", "call"]
CHANNELS = {"missed_call": "phone", "call": "phone", "opt_out": "sms", "reply": "sms"}
STATUSES = [
    "contacted",
    "qualified",
    "tour_requested",
    "tour_booked",
    "toured",
    "application_started",
    "application_submitted",
    "leased",
    "nurture",
    "lost",
    "new",
]

operation = st.one_of(
    st.tuples(st.just("signal"), st.sampled_from(EVENTS), st.integers(0, 2), st.sampled_from(["email", "web"])),
    st.tuples(st.just("manual"), st.integers(0, 2)),
    st.tuples(st.just("status"), st.integers(0, 5), st.sampled_from(STATUSES), st.booleans()),
    st.tuples(st.just("tour"), st.integers(0, 5), st.integers(1, 96)),
    st.tuples(st.just("tour_update"), st.integers(0, 5), st.sampled_from(["completed", "no_show", "canceled"])),
    st.tuples(st.just("activity"), st.integers(0, 5), st.sampled_from(["call", "meeting", "email", "text"])),
    st.tuples(st.just("wait"), st.integers(1, 9 * 24)),
)


async def _apply(
    op: tuple[Any, ...],
    client: httpx.AsyncClient,
    org: Any,
    state: dict[str, Any],
    app_settings: Settings,
    sessionmaker: SessionMaker,
    clock: FakeClock,
) -> None:
    kind = op[0]
    leads: list[str] = state["leads"]
    if kind == "signal":
        _, event, renter, channel = op
        email, phone = RENTERS[renter]
        out = await signal(
            client,
            org,
            email=email,
            phone=phone,
            event=event,
            channel=CHANNELS.get(event, channel),
            first_name=None,
            last_name=None,
        )
        if out["lead_id"] is not None:  # a STOP from a number nobody knows records consent and makes no lead
            leads.append(out["lead_id"])
    elif kind == "manual":
        email, phone = RENTERS[op[1]]
        body = {"first_name": "Manual", "email": email, "phone": phone}
        response = await client.post("/v1/leads?on_duplicate=attach", json=body, headers=org.headers)
        assert response.status_code in (200, 201), response.text
        leads.append(response.json()["id"])
    elif not leads:
        return
    elif kind == "status":
        _, pick, status, unqualified = op
        body: dict[str, Any] = {"status": status}
        if status in ("lost", "nurture") and unqualified:
            body["lost_reason"] = "not_qualified"
        elif status == "lost":
            body["lost_reason"] = "price"
        response = await client.post(f"/v1/leads/{leads[pick % len(leads)]}/status", json=body, headers=org.headers)
        assert response.status_code in (200, 409), response.text
    elif kind == "tour":
        starts = clock.now() + timedelta(hours=op[2])
        response = await client.post(
            f"/v1/leads/{leads[op[1] % len(leads)]}/tours", json={"starts_at": starts.isoformat()}, headers=org.headers
        )
        # 409: the lead is closed, or its agent already has a tour then (tours can't collide, issue #12)
        assert response.status_code in (201, 409), response.text
        if response.status_code == 201:
            state["tours"].append(response.json()["id"])
    elif kind == "tour_update" and state["tours"]:
        tour_id = state["tours"][op[1] % len(state["tours"])]
        response = await client.patch(f"/v1/tours/{tour_id}", json={"status": op[2]}, headers=org.headers)
        assert response.status_code in (200, 409), response.text
    elif kind == "activity":
        response = await client.post(
            f"/v1/leads/{leads[op[1] % len(leads)]}/activities", json={"kind": op[2]}, headers=org.headers
        )
        assert response.status_code == 201, response.text
    elif kind == "wait":
        clock.advance(hours=op[1])
        await drain(app_settings, sessionmaker)
        await drain(app_settings, sessionmaker)


async def _check(sessionmaker: SessionMaker, org_id: uuid.UUID, op: tuple[Any, ...]) -> None:
    async with sessionmaker() as session:
        leads = list(await session.scalars(select(Lead).where(Lead.org_id == org_id)))
        pending = set(
            await session.scalars(
                select(ScheduledAction.lead_id).where(
                    ScheduledAction.org_id == org_id, ScheduledAction.status == "pending"
                )
            )
        )
        rule_tasks = set(
            await session.scalars(
                select(Task.lead_id).where(Task.org_id == org_id, Task.status == "open", Task.rule.is_not(None))
            )
        )
    for lead in leads:
        if lead.status in ("lost", "leased"):
            assert lead.next_action_type is None, (op, lead.status)
            assert lead.id not in pending, (op, "closed lead keeps pending steps")
            assert lead.id not in rule_tasks, (op, "closed lead keeps open rule tasks")
        else:
            assert lead.next_action_type, (op, lead.status, "no next action")
            assert lead.next_action_due_at is not None, (op, lead.status, "no due time")
            assert lead.next_action_owner_id is not None, (op, lead.status, "no owner")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(operations=st.lists(operation, min_size=1, max_size=12))
async def test_every_open_lead_has_a_next_action_and_no_closed_lead_keeps_pending_steps(
    operations: list[tuple[Any, ...]],
    client: httpx.AsyncClient,
    sessionmaker: SessionMaker,
    settings: Settings,
    clock: FakeClock,
) -> None:
    org = await make_org(sessionmaker)
    await add_agent(sessionmaker, org)
    state: dict[str, Any] = {"leads": [], "tours": []}
    for op in operations:
        await _apply(op, client, org, state, settings, sessionmaker, clock)
        await _check(sessionmaker, org.org_id, op)
