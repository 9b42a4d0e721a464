"""POST /v1/internal/signals with a list: one transaction, one savepoint per signal, sorted locks (#16)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.messaging.consent import record_consent
from shared.models import AutomationLog, Contact, Lead, LeadEvent, OutboundMessage, ScheduledAction, StreamEvent
from tests.conftest import OrgFixture
from tests.signals.helpers import SERVICE_HEADERS, envelope
from tests.signals.test_statement_budget import counting


async def post_batch(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = await client.post("/v1/internal/signals", json=bodies, headers=SERVICE_HEADERS)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()
    return results


async def count(sessionmaker: async_sessionmaker[AsyncSession], model: Any, org_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(model.org_id == org_id)) or 0)


async def test_a_bad_signal_fails_alone_and_the_batch_is_idempotent(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    bodies = [
        envelope(org.org_id, email="first.batch@example.com"),
        envelope(uuid.uuid4(), email="nobody@example.com"),  # an organization that does not exist
        envelope(org.org_id, phone="+15125550177", first_name="Sam", last_name="Ode"),
    ]
    results = await post_batch(client, bodies)
    assert [result["status"] for result in results] == [200, 404, 200]
    assert [result["inbound_id"] for result in results] == [body["inbound_id"] for body in bodies]
    assert results[1]["outcome"] is None and results[1]["detail"] == "Organization not found."
    assert results[0]["outcome"]["created"] and results[2]["outcome"]["created"]
    events = await count(sessionmaker, LeadEvent, org.org_id)

    again = await post_batch(client, bodies)  # a redelivered batch: same outcomes, nothing written
    assert [result["outcome"] for result in again] == [result["outcome"] for result in results]
    assert await count(sessionmaker, LeadEvent, org.org_id) == events
    assert await count(sessionmaker, Contact, org.org_id) == 2


async def test_crossing_batches_for_the_same_renters_do_not_deadlock_and_make_one_contact_each(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    renters = [(f"cross{i}@example.com", f"+1512555{i + 300:04d}") for i in range(6)]

    def batch(order: list[int], channel: int) -> list[dict[str, Any]]:
        bodies = []
        for index in order:
            email, phone = renters[index]
            fields = {"email": email, "phone": phone} if channel == 0 else {"phone": phone, "first_name": None}
            bodies.append(envelope(org.org_id, **fields))
        return bodies

    forward, backward = list(range(6)), list(reversed(range(6)))
    batches = [batch(forward, 0), batch(backward, 1), batch(backward, 0), batch(forward, 1)]
    answers = await asyncio.gather(*(post_batch(client, bodies) for bodies in batches))
    assert all(result["status"] == 200 for results in answers for result in results)
    assert await count(sessionmaker, Contact, org.org_id) == 6


async def test_the_single_object_form_still_answers_one_outcome(client: httpx.AsyncClient, org: OrgFixture) -> None:
    body = envelope(org.org_id, email="single.form@example.com")
    response = await client.post("/v1/internal/signals", json=body, headers=SERVICE_HEADERS)
    assert response.status_code == 200 and response.json()["created"] is True
    missing = await client.post(
        "/v1/internal/signals", json=envelope(uuid.uuid4(), email="x@example.com"), headers=SERVICE_HEADERS
    )
    assert missing.status_code == 404


async def test_a_signal_twice_in_one_batch_is_applied_once_and_answers_the_same_outcome(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    twin = envelope(org.org_id, email="twin.batch@example.com")
    other = envelope(org.org_id, email="other.batch@example.com")
    results = await post_batch(client, [twin, other, twin])
    assert [result["status"] for result in results] == [200, 200, 200]
    assert results[0]["outcome"] == results[2]["outcome"] and results[0]["outcome"]["created"]
    assert await count(sessionmaker, Contact, org.org_id) == 2
    events = await count(sessionmaker, LeadEvent, org.org_id)
    again = await post_batch(client, [other, twin])  # outcomes read up front for the whole batch
    assert [result["outcome"] for result in again] == [results[1]["outcome"], results[0]["outcome"]]
    assert await count(sessionmaker, LeadEvent, org.org_id) == events


async def test_a_batch_keeps_opt_outs_recorded_before_it_and_inside_it(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The batch reads its addresses' consent once (services/api/messaging/consent.py): a STOP recorded
    before the batch, or by an earlier signal of the same batch, still keeps texts from that number."""
    before, inside, control = "+15125550181", "+15125550182", "+15125550183"
    async with sessionmaker() as session, session.begin():
        await record_consent(
            session, org.org_id, channel="sms", state="opted_out", source="sms_keyword", address=before
        )
    bodies = [
        envelope(
            org.org_id,
            phone=inside,
            event="opt_out",
            channel="sms",
            source="sms",
            first_name=None,
            last_name=None,
            message="STOP",
        ),
        *(
            envelope(
                org.org_id,
                phone=phone,
                email=f"renter{phone[-3:]}@example.com",
                event="tour_request",
                channel="web",
                source="website",
                message="Can I see it Saturday?",
            )
            for phone in (inside, before, control)
        ),
    ]
    results = await post_batch(client, bodies)
    assert [result["status"] for result in results] == [200] * 4
    async with sessionmaker() as session:
        texts = (
            await session.execute(
                select(OutboundMessage.to_address, OutboundMessage.reason, OutboundMessage.status).where(
                    OutboundMessage.org_id == org.org_id, OutboundMessage.channel == "sms"
                )
            )
        ).all()
    assert {to for to, _, status in texts if status == "queued"} == {control}
    assert sorted((to, reason) for to, reason, status in texts if status == "suppressed") == [
        (before, "opted_out"),
        (inside, "opted_out"),
    ]


async def test_a_new_renter_who_texts_stop_in_the_same_batch_is_opted_out_and_the_batch_applies_whole(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The batch writes its new renters with its flush; a STOP from one of them, later in the same batch, records
    consent on that renter (a row pointing at it), so the renter is written first and the batch is not split."""
    phone = "+15125550191"
    request = envelope(
        org.org_id, phone=phone, email="stop.same.batch@example.com", event="tour_request", channel="web",
        source="website", message="Can I see it Saturday?",
    )  # fmt: skip
    stop = envelope(
        org.org_id, phone=phone, event="opt_out", channel="sms", source="sms", first_name=None, last_name=None,
        message="STOP",
    )  # fmt: skip
    with counting() as seen:
        results = await post_batch(client, [request, stop])
    assert [result["status"] for result in results] == [200, 200]
    assert results[1]["outcome"]["contact_id"] == results[0]["outcome"]["contact_id"]
    assert sum(statement.startswith("SAVEPOINT") for statement in seen) == 1  # applied whole, not split
    async with sessionmaker() as session:
        contact = await session.get_one(Contact, uuid.UUID(results[0]["outcome"]["contact_id"]))
    assert contact.sms_consent == "opted_out"


async def _renter_state(
    sessionmaker: async_sessionmaker[AsyncSession], org_id: uuid.UUID, email: str
) -> dict[str, Any]:
    """What the renter's touches left: leads, timeline, steps and messages, without ids or times."""
    async with sessionmaker() as session:
        contact = await session.scalar(select(Contact).where(Contact.org_id == org_id, Contact.primary_email == email))
        assert contact is not None
        leads = (await session.scalars(select(Lead.id).where(Lead.contact_id == contact.id))).all()
        events = (await session.scalars(select(LeadEvent.type).where(LeadEvent.lead_id.in_(leads)))).all()
        steps = (
            await session.execute(
                select(ScheduledAction.kind, ScheduledAction.status).where(ScheduledAction.lead_id.in_(leads))
            )
        ).all()
        messages = (
            await session.execute(
                select(OutboundMessage.kind, OutboundMessage.template, OutboundMessage.status).where(
                    OutboundMessage.lead_id.in_(leads)
                )
            )
        ).all()
    return {
        "leads": len(leads),
        "events": sorted(events),
        "steps": sorted(map(tuple, steps)),
        "messages": sorted(map(tuple, messages), key=str),
    }


async def test_a_renter_twice_in_one_batch_ends_as_in_two_batches_and_the_batch_applies_whole(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A tour request and then an SMS reply from the same new renter: the reply finds the lead, the first reply
    and the follow-up step its twin left pending in the batch (not yet written), and moves or cancels them
    exactly as when the two come in separate batches. The batch is not split to get there: one savepoint."""

    def touches(tag: str, phone: str) -> tuple[dict[str, Any], dict[str, Any]]:
        email = f"{tag}@example.com"
        request = envelope(
            org.org_id, email=email, phone=phone, event="tour_request", channel="web", source="website",
            message="Can I see it Saturday?",
        )  # fmt: skip
        reply = envelope(org.org_id, email=email, phone=phone, event="reply", channel="sms", message="Yes, 10am works")
        return request, reply

    def filler(tag: str) -> dict[str, Any]:
        return envelope(org.org_id, email=f"{tag}@example.com", event="inquiry", channel="web", source="website")

    request, reply = touches("twice.together", "+15125550361")
    with counting() as seen:
        results = await post_batch(client, [request, filler("filler.a"), reply])
    assert [result["status"] for result in results] == [200, 200, 200]
    assert results[2]["outcome"]["lead_id"] == results[0]["outcome"]["lead_id"]
    assert sum(statement.startswith("SAVEPOINT") for statement in seen) == 1  # applied whole, not split

    request_apart, reply_apart = touches("twice.apart", "+15125550362")
    await post_batch(client, [request_apart, filler("filler.b")])
    await post_batch(client, [reply_apart, filler("filler.c")])

    together = await _renter_state(sessionmaker, org.org_id, "twice.together@example.com")
    apart = await _renter_state(sessionmaker, org.org_id, "twice.apart@example.com")
    assert together["leads"] == 1
    assert together["messages"] and together["steps"]  # the touches decided something to compare
    assert together == apart


async def _written_for(sessionmaker: async_sessionmaker[AsyncSession], lead_id: str) -> dict[str, list[Any]]:
    """The rows a batch keeps as values until its end (txmemo.append_row), by kind, without ids or times."""
    async with sessionmaker() as session:
        events = (await session.scalars(select(LeadEvent.type).where(LeadEvent.lead_id == lead_id))).all()
        log = (
            await session.execute(
                select(AutomationLog.rule_id, AutomationLog.action, AutomationLog.outcome).where(
                    AutomationLog.lead_id == lead_id
                )
            )
        ).all()
        stream = (await session.scalars(select(StreamEvent.type).where(StreamEvent.lead_id == lead_id))).all()
    return {"events": sorted(events), "log": sorted(map(tuple, log), key=str), "stream": sorted(stream)}


async def test_a_split_batch_writes_each_good_signals_timeline_log_and_stream_rows_once(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The batch's single savepoint keeps timeline, automation-log and stream rows as values for its end. When
    a signal fails, that attempt is rolled back and the values kept with it forgotten: the signals applied one
    savepoint each write their rows as before, once, and exactly what a batch that applies whole writes."""

    def request(tag: str) -> dict[str, Any]:
        return envelope(
            org.org_id, email=f"{tag}@example.com", event="tour_request", channel="web", source="website",
            message="Can I see it Saturday?",
        )  # fmt: skip

    with counting() as seen:
        split = await post_batch(client, [request("split.a"), envelope(uuid.uuid4(), email="x@example.com")])
    assert [result["status"] for result in split] == [200, 404]
    assert sum(statement.startswith("SAVEPOINT") for statement in seen) == 3  # whole, then one per signal
    whole = await post_batch(client, [request("whole.a"), request("whole.b")])
    assert [result["status"] for result in whole] == [200, 200]

    after_split = await _written_for(sessionmaker, split[0]["outcome"]["lead_id"])
    applied_whole = await _written_for(sessionmaker, whole[0]["outcome"]["lead_id"])
    assert after_split["events"] and after_split["log"] and after_split["stream"]
    assert after_split == applied_whole


async def test_values_kept_for_the_batch_end_are_written_once_and_not_kept_after_it(
    org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """`append_row` keeps a row only while the batch defers them; `write_appended` writes what it kept, once; after
    `undefer` (the end of the batch's savepoint) a row goes to the session again, so nothing waits for a write that
    will not come."""
    from services.api import txmemo

    def row(kind: str) -> dict[str, Any]:
        return {"id": uuid.uuid4(), "org_id": org.org_id, "type": kind, "lead_id": None, "data": {"probe": kind}}

    async with sessionmaker() as session:  # never committed: closing rolls it back
        assert not txmemo.append_row(session, StreamEvent, row("outside"))  # no batch: the caller adds it
        with txmemo.batch_scope(session):
            assert not txmemo.append_row(session, StreamEvent, row("not deferred"))
            txmemo.defer(session, txmemo.APPEND_ROWS)
            kept = row("kept")
            assert txmemo.append_row(session, StreamEvent, kept)
            await txmemo.write_appended(session)
            await txmemo.write_appended(session)  # nothing left: no second row
            txmemo.undefer(session, txmemo.APPEND_ROWS)
            assert not txmemo.append_row(session, StreamEvent, row("after"))
        written = (await session.scalars(select(StreamEvent.type).where(StreamEvent.org_id == org.org_id))).all()
        await session.rollback()
    assert written == ["kept"]


async def test_a_batchs_new_renters_are_written_once_with_their_identities_in_their_search_text(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A batch writes its new renters' identities first, then the renters, one INSERT each (the reference is
    checked at commit), so each contact is written once with the search text its identities give it; a search by
    an address or a number then finds the renter's lead."""
    renters = [(f"once{i}@example.com", f"+1512557{i:04d}", f"Quinn{i}") for i in range(3)]
    bodies = [envelope(org.org_id, email=e, phone=p, first_name=n, last_name="Ode") for e, p, n in renters]
    with counting() as seen:
        results = await post_batch(client, bodies)
    assert all(result["status"] == 200 and result["outcome"]["created"] for result in results)
    writes = [sql.split("(")[0].strip() for sql in seen if sql.lstrip().upper().startswith("INSERT INTO CONTACT")]
    assert writes == ["INSERT INTO contact_identities", "INSERT INTO contacts"]
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Contact.primary_email, Contact.search_text, Lead.search_text, Lead.contact_id)
                .join(Lead, Lead.contact_id == Contact.id)
                .where(Contact.org_id == org.org_id)
            )
        ).all()
    assert len(rows) == 3
    contact_of = {}
    for email, contact_text, lead_text, contact_id in rows:
        email_, phone, name = next(renter for renter in renters if renter[0] == email)
        assert email_ in contact_text and phone in contact_text and name.lower() in contact_text
        assert lead_text == contact_text
        contact_of[email] = str(contact_id)
    for email, phone, _ in renters:
        for q in (email.split("@")[0], phone):
            response = await client.get("/v1/leads", params={"q": q}, headers=org.headers)
            assert response.status_code == 200, response.text
            assert [lead["contact_id"] for lead in response.json()["items"]] == [contact_of[email]], q
