"""Issue 17: anonymous callers and shared phones end to end, the one identity rule, and caller-ID names.

End to end means the real endpoint, PostgreSQL, Redis, a burst worker and the API; the corpus cases of the
ten layouts run in tests/intake/test_pipeline_e2e.py and tests/intake/test_parsers.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.parsers import ParseContext, RawInbound, parse
from services.intake.parsers.common import caller_contact
from services.intake.parsers.email.mime import flatten_html
from services.intake.parsers.web_form import flatten_form
from shared.config import Settings
from shared.enums import InboundKind
from shared.identity import email_identity, identity_keys
from shared.models import Contact, Lead, LeadEvent, Task
from shared.normalize import caller_contact_name, is_caller_id_placeholder, normalize_email
from shared.normalize.caller_id import ANONYMOUS_CALLER_REASON
from shared.repositories.inbound import anonymous_missed_calls
from shared.schemas.signal import SignalContact
from tests.conftest import OrgFixture
from tests.corpus.loader import load_corpus
from tests.intake.test_intake_support import PUBLIC_URL, SERVICE_TOKEN, intake_path, post_case, rows_for, set_secrets
from tests.intake.test_pipeline_e2e import run_burst_worker

CASES = {case.name: case for case in load_corpus()}
RECEIVED = datetime(2025, 9, 20, 15, tzinfo=UTC)


@pytest.fixture
async def worker_api(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=PUBLIC_URL,
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    ) as api:
        yield api


async def _count(sessionmaker: async_sessionmaker[AsyncSession], model: Any, org_id: uuid.UUID) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(model.org_id == org_id)) or 0)


async def test_anonymous_callers_make_no_contact_no_lead_and_are_counted_per_property(
    client: httpx.AsyncClient,
    worker_api: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await set_secrets(client, org)
    elm = await client.post(
        "/v1/properties", json={"name": "Elm Court", "phone_numbers": ["+15125550190"]}, headers=org.headers
    )
    assert elm.status_code == 201, elm.text
    names = [
        "twilio_voice/anonymous_caller_property_known",  # Twilio: +7378742833 (RESTRICTED)
        "twilio_voice/anonymous_caller_no_answer",  # Twilio: +266696687, a number that rings no property
        "callrail/post_call_anonymous",  # CallRail: "Restricted"
        "ringcentral/missed_call_anonymous",  # RingCentral: no number at all
    ]
    ids = []
    for name in names:
        response = await post_case(client, org, CASES[name])
        assert response.status_code in (200, 202), response.text
        ids.append(uuid.UUID(response.headers["x-inbound-id"]))
    await run_burst_worker(settings, worker_api)

    rows = {row.id: row for row in await rows_for(sessionmaker, org)}
    assert {rows[i].status for i in ids} == {"ignored"}
    assert {rows[i].reason for i in ids} == {ANONYMOUS_CALLER_REASON}
    assert all(rows[i].lead_id is None and rows[i].contact_id is None for i in ids)
    elm_id = uuid.UUID(elm.json()["id"])
    assert [rows[i].property_id for i in ids] == [elm_id, None, elm_id, elm_id]
    # nobody to answer: no contact, no lead, hence no text-back, no call task, no timeline
    for model in (Contact, Lead, Task, LeadEvent):
        assert await _count(sessionmaker, model, org.org_id) == 0, model.__name__
    detail = (await client.get(f"/v1/inbound/{ids[0]}", headers=org.headers)).json()
    assert detail["status"] == "ignored" and detail["property_id"] == str(elm_id)
    async with sessionmaker() as session:
        counted = await anonymous_missed_calls(
            session, org.org_id, RECEIVED - timedelta(days=1), datetime(2100, 1, 1, tzinfo=UTC)
        )
    assert counted == {elm_id: 3, None: 1}


async def test_a_shared_phone_with_another_name_goes_to_review_and_stays_on_the_lead_to_call_back(
    client: httpx.AsyncClient,
    worker_api: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = {
        "submission_id": "shared-1",
        "name": "Maya Chen",
        "email": "maya.chen@example.com",
        "phone": "(512) 555-0170",
        "message": "Is the 1 bedroom available?",
    }
    second = {
        "submission_id": "shared-2",
        "name": "Derek Stone",
        "email": "derek.stone@example.com",
        "phone": "512.555.0170",
        "message": "Do you allow cats?",
    }
    ids = []
    for form in (first, second):
        response = await client.post(intake_path(org, InboundKind.web_form), json=form)
        assert response.status_code == 202, response.text
        ids.append(response.json()["inbound_id"])
        await run_burst_worker(settings, worker_api)  # in order: the second must find the first's phone

    leads = []
    for inbound_id in ids:
        detail = (await client.get(f"/v1/inbound/{inbound_id}", headers=org.headers)).json()
        assert detail["status"] == "processed", detail
        leads.append((await client.get(f"/v1/leads/{detail['lead_id']}", headers=org.headers)).json())
    maya, derek = leads
    assert maya["phone"] == "+15125550170" and maya["callback_phone"] is None
    assert derek["first_name"] == "Derek" and derek["email"] == "derek.stone@example.com"
    assert derek["phone"] is None  # not Derek's identity: the number stays Maya's
    assert derek["callback_phone"] == "+15125550170"  # but the agent can call back
    assert derek["contact_id"] != maya["contact_id"]
    review = (await client.get("/v1/review-items", headers=org.headers)).json()["items"]
    assert len(review) == 1 and "name differs" in " ".join(review[0]["reasons"])
    # never matched on: a third renter on that number still finds Maya, not Derek
    keys = identity_keys(SignalContact(phone=derek["callback_phone"]))
    assert keys.usable == [("phone", "+15125550170")]
    # it is the renter's personal data: erasing Derek erases it
    erased = await client.delete(f"/v1/contacts/{derek['contact_id']}", headers=org.headers)
    assert erased.status_code == 200, erased.text
    after = (await client.get(f"/v1/leads/{derek['id']}", headers=org.headers)).json()
    assert after["callback_phone"] is None


async def test_caller_id_placeholder_stays_on_the_event_not_the_contact(
    client: httpx.AsyncClient,
    worker_api: httpx.AsyncClient,
    org: OrgFixture,
    settings: Settings,
) -> None:
    await set_secrets(client, org)
    response = await post_case(client, org, CASES["twilio_voice/caller_name_wireless_caller"])
    await run_burst_worker(settings, worker_api)
    detail = (await client.get(f"/v1/inbound/{response.headers['x-inbound-id']}", headers=org.headers)).json()
    lead = (await client.get(f"/v1/leads/{detail['lead_id']}", headers=org.headers)).json()
    assert (lead["first_name"], lead["last_name"], lead["phone"]) == (None, None, "+15125550151")
    timeline = (await client.get(f"/v1/leads/{detail['lead_id']}/timeline", headers=org.headers)).json()["items"]
    missed = next(event for event in timeline if event["type"] == "missed_call")
    assert missed["data"]["caller_name"] == "WIRELESS CALLER"


# --- one rule for "may identify a person" -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "identity", "note"),
    [
        ("Jane.Doe@Example.com", "jane.doe@example.com", None),
        ("jane@example.com<mailto:jane@example.com>", "jane@example.com", None),
        ("mailto:jane@example.com?subject=Hi", "jane@example.com", None),
        ("none@none.com", None, "placeholder"),
        ("k7x2p9@zlead.co", None, "relay"),
        ("lead@apartments.com", None, "listing site"),
        ("rentalclientservices@zillowrentals.com", None, "listing site"),
        ("office@acme.example", None, "blocklist"),
        ("anyone@blocked.example", None, "blocklist"),
        ("not an address", None, "not a valid"),
    ],
)
def test_one_email_rule_for_parsers_and_api(raw: str, identity: str | None, note: str | None) -> None:
    blocked = frozenset({("email", "office@acme.example"), ("email_domain", "blocked.example")})
    found, why = email_identity(raw, blocked)
    assert found == identity
    assert (why is None) if note is None else (note in (why or ""))
    # the parsers apply the same rule: a web form carrying the address gets the same answer
    body = f'{{"name": "Pat Lee", "email": "{raw}", "phone": "5125550111", "submission_id": "x"}}'.encode()
    raw_inbound = RawInbound(InboundKind.web_form, body, "application/json", RECEIVED)
    signal = parse(raw_inbound, ParseContext(blocked=blocked)).signal
    assert signal is not None and signal.contact.email == identity
    assert identity_keys(signal.contact, blocked).value("email") == identity


def test_blocked_phone_leaves_the_parsed_contact() -> None:
    body = b'{"name": "Pat Lee", "phone": "(512) 555-0100", "email": "pat@example.com"}'
    raw = RawInbound(InboundKind.web_form, body, "application/json", RECEIVED)
    signal = parse(raw, ParseContext(blocked=frozenset({("phone", "+15125550100")}))).signal
    assert signal is not None and signal.contact.phone is None and signal.contact.email == "pat@example.com"


# --- caller-ID names ------------------------------------------------------------------------------------------

STAND_INS = [
    "WIRELESS CALLER",
    "UNKNOWN NAME",
    "UNAVAILABLE",
    "PRIVATE",
    "ANONYMOUS",
    "RESTRICTED",
    "NO CALLER ID",
    "OUT OF AREA",
    "TOLL FREE CALL",
    "CELL PHONE",
    "PRIVATE CALLER",
    "UNKNOWN CALLER",
    "VERIZON WIRELESS",
    "T-MOBILE USA",
    "AT&T MOBILITY",
    "BOOST MOBILE",
    "GOOGLE VOICE",
    "SPAM RISK",
]
CITIES = ["AUSTIN", "SAN ANTONIO", "NEW YORK", "CHICAGO", "SEATTLE", "EL PASO", "ST LOUIS", "CELL PHONE"]
STATES = ["TX", "NY", "IL", "WA", "CA", "MO", "FL", "AL", "PA", "DC"]


@st.composite
def caller_id_placeholders(draw: st.DrawFn) -> str:
    """What carriers send instead of a name: stand-ins, "CITY ST", carrier codes; any casing and spacing."""
    kind = draw(st.sampled_from(["stand_in", "place", "code", "blank"]))
    if kind == "stand_in":
        text = draw(st.sampled_from(STAND_INS))
        text = draw(st.sampled_from([text, text.lower(), text.title()]))
    elif kind == "place":
        city, state = draw(st.sampled_from(CITIES)), draw(st.sampled_from(STATES))
        text = draw(st.sampled_from([f"{city} {state}", f"{city}, {state}", f"{city.title()}, {state}"]))
    elif kind == "code":
        letters = draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=0, max_size=4))
        digits = draw(st.integers(min_value=0, max_value=10**9))
        text = draw(st.sampled_from([f"{letters}{digits}", f"{letters} {digits}", f"{digits}"]))
    else:
        text = draw(st.sampled_from(["", " ", "-", "?", "..."]))
    pad = draw(st.sampled_from(["", " ", "  ", "\t"]))
    return pad + text.replace(" ", draw(st.sampled_from([" ", "  "]))) + pad


@settings(max_examples=300, deadline=None)
@given(caller_id_placeholders())
def test_caller_id_placeholders_never_become_a_name(cnam: str) -> None:
    assert is_caller_id_placeholder(cnam)
    assert caller_contact_name(cnam) is None
    contact = caller_contact("+15125550152", cnam)
    assert (contact.full_name, contact.first_name, contact.last_name) == (None, None, None)
    assert contact.phone == "+15125550152"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_caller_id_is_either_a_name_or_none(cnam: str) -> None:
    name = caller_contact_name(cnam)
    assert name is None or (name.strip() and not is_caller_id_placeholder(name))


@pytest.mark.parametrize("cnam", ["Devon Hale", "CASTRO MARIA", "Maria Lopez", "Al Green", "Bell Rogers"])
def test_real_caller_names_are_kept(cnam: str) -> None:
    assert caller_contact_name(cnam) is not None


# --- flattening ---------------------------------------------------------------------------------------------

words = st.text(alphabet=st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(st.lists(words, min_size=2, max_size=8), st.lists(st.sampled_from([" ", "\n", "\r\n", "\n  ", "\t"])))
def test_source_newlines_inside_inline_html_are_spaces(parts: list[str], breaks: list[str]) -> None:
    seps = [breaks[i % len(breaks)] if breaks else " " for i in range(len(parts) - 1)]
    inline = "".join(part + sep for part, sep in zip(parts, [*seps, ""], strict=True))
    text, _ = flatten_html(f"<p>{inline} <a href='x'>{parts[0]}</a></p><p>next</p>")
    assert text.splitlines() == [" ".join([*parts, parts[0]]), "next"]


@settings(max_examples=100, deadline=None)
@given(st.emails().filter(lambda addr: "%" not in addr))  # in a mailto: URL "%" starts an escape
def test_plain_text_link_rendering_gives_the_address(addr: str) -> None:
    assert normalize_email(f"{addr}<mailto:{addr}>") == normalize_email(addr)


def test_nested_form_is_flattened_one_level_top_level_wins() -> None:
    flat = flatten_form(
        {
            "email": "top@example.com",
            "data": {"email": "inner@example.com", "name": "Ana Ruiz", "deeper": {"phone": "1"}},
            "fields": [{"label": "Phone", "value": "5125550101"}, {"name": "Message", "value": "hi"}],
            "property": {"id": "ELM-204", "name": "Elm Court"},
            "utm": {"source": "google", "utm_medium": "cpc"},
        }
    )
    assert flat == {
        "email": "top@example.com",
        "name": "Ana Ruiz",
        "Phone": "5125550101",
        "Message": "hi",
        "property_id": "ELM-204",
        "property_name": "Elm Court",
        "utm_source": "google",
        "utm_medium": "cpc",
    }


# --- RingCentral: the subscription's missedCall filter ----------------------------------------------------------


def _ringcentral(party_changes: dict[str, Any], event: str | None = None) -> Any:
    case = CASES["ringcentral/missed_call_filter_without_party_flag"]
    envelope = json.loads(case.raw.body)
    envelope["body"]["parties"][0].update(party_changes)
    if event is not None:
        envelope["event"] = event
    return parse(replace(case.raw, body=json.dumps(envelope).encode()), ParseContext())


def test_ringcentral_filter_is_trusted_only_for_a_finished_party_without_a_flag() -> None:
    assert _ringcentral({}).outcome.value == "signal"
    assert _ringcentral({"missedCall": False}).reason == "no missed party"  # an explicit false wins
    assert _ringcentral({"status": {"code": "Proceeding"}}).reason == "no missed party"  # still ringing
    unfiltered = _ringcentral({}, event="/restapi/v1.0/account/~/telephony/sessions")
    assert unfiltered.reason == "no missed party"  # without the filter the flag is needed
    assert _ringcentral({"status": {"code": "VoiceMail"}}, event="/x").outcome.value == "signal"


def test_ringcentral_internal_extension_is_not_an_anonymous_caller() -> None:
    result = _ringcentral({"from": {"extensionId": "444", "name": "Front Desk"}})
    assert (result.outcome.value, result.reason) == ("ignored", "internal call")
