"""POST /v1/intake/{intake_key}/{kind}: stored before acknowledged, idempotent, signed senders fail closed."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from arq.constants import job_key_prefix
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import Settings
from shared.enums import InboundKind
from tests.conftest import OrgFixture
from tests.corpus.loader import load_corpus
from tests.intake.test_intake_support import (
    SECRETS,
    first_signal_case,
    intake_path,
    mailgun_fields,
    post_case,
    row,
    rows_for,
    set_secrets,
    sign,
    success_status,
)

CASES = load_corpus()
EMAIL = (
    b"From: Dana Renter <dana@example.com>\r\nTo: leasing@inbound.guestcard.test\r\n"
    b"Subject: Question about 2BR\r\nMessage-ID: <q-1@example.com>\r\n"
    b"Date: Sat, 20 Sep 2025 10:00:00 -0400\r\n\r\nIs the 2 bedroom still available?\r\n"
)


async def woken(settings: Settings, org: OrgFixture) -> list[tuple[str, str, list[Any]]]:
    """The organization's drain jobs waiting in the real queue: (job id, function, args)."""
    assert settings.redis_url
    redis = aioredis.from_url(settings.redis_url)
    try:
        ids = [item.decode() for item in await redis.zrange(settings.queue_name, 0, -1)]
        mine = [job_id for job_id in ids if job_id.startswith(f"{settings.queue_name}:intake:{org.org_id}:")]
        payloads = [json.loads(await redis.get(job_key_prefix + job_id)) for job_id in mine]
    finally:
        await redis.aclose()
    return [(job_id, payload["f"], payload["a"]) for job_id, payload in zip(mine, payloads, strict=True)]


@pytest.mark.parametrize("kind", list(InboundKind), ids=lambda kind: kind.value)
async def test_every_kind_is_stored_before_it_is_acknowledged(
    kind: InboundKind,
    client: httpx.AsyncClient,
    org: OrgFixture,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    await set_secrets(client, org)
    case = first_signal_case(CASES, kind)
    response = await post_case(client, org, case)

    assert response.status_code == success_status(kind), response.text
    inbound_id = response.headers["x-inbound-id"]
    if kind in (InboundKind.twilio_voice, InboundKind.twilio_sms):
        assert response.headers["content-type"].startswith("text/xml")
        assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    else:
        assert response.json() == {"inbound_id": inbound_id}
    # the response came after the commit: another connection sees the row now
    stored = await row(sessionmaker, inbound_id)
    assert stored.org_id == org.org_id
    assert stored.kind == kind.value
    assert stored.status == "received"
    assert stored.body_size == len(stored.body)
    assert stored.content_type == case.raw.content_type
    assert stored.delivery_key.startswith(f"{kind.value}:")
    assert all(name == name.lower() for name in stored.headers)
    assert "verification-token" not in stored.headers
    # the organization's drain is woken: one job (generation 0 of this organization), named by no delivery
    assert await woken(settings, org) == [
        (f"{settings.queue_name}:intake:{org.org_id}:0", "drain_inbound", [str(org.org_id)])
    ]


async def test_credentials_are_not_stored_and_query_is(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.post(
        intake_path(org, "email") + "?utm_source=test",
        content=EMAIL,
        headers={"Content-Type": "message/rfc822", "Authorization": "Basic dTpw", "Cookie": "a=b", "X-Custom": "1"},
    )
    assert response.status_code == 202
    stored = await row(sessionmaker, response.json()["inbound_id"])
    assert stored.body == EMAIL
    assert "authorization" not in stored.headers and "cookie" not in stored.headers
    assert stored.headers["x-custom"] == "1"
    assert stored.query == {"utm_source": "test"}
    assert stored.delivery_key == "email:q-1@example.com"


async def test_redelivery_returns_the_same_id_without_a_second_row_or_job(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    path = intake_path(org, "email")
    first = await client.post(path, content=EMAIL, headers={"Content-Type": "message/rfc822"})
    second = await client.post(path, content=EMAIL, headers={"Content-Type": "message/rfc822"})
    assert first.status_code == second.status_code == 202
    assert first.json()["inbound_id"] == second.json()["inbound_id"] == second.headers["x-inbound-id"]
    assert len(await rows_for(sessionmaker, org)) == 1
    assert [job_id for job_id, _, _ in await woken(settings, org)] == [f"{settings.queue_name}:intake:{org.org_id}:0"]


async def test_same_delivery_key_in_two_organizations_is_two_rows(
    client: httpx.AsyncClient, org: OrgFixture, other_org: OrgFixture
) -> None:
    one = await client.post(intake_path(org, "email"), content=EMAIL, headers={"Content-Type": "message/rfc822"})
    two = await client.post(intake_path(other_org, "email"), content=EMAIL, headers={"Content-Type": "message/rfc822"})
    assert one.json()["inbound_id"] != two.json()["inbound_id"]


async def test_unknown_intake_key_and_kind_are_404_problems(client: httpx.AsyncClient, org: OrgFixture) -> None:
    unknown_key = await client.post("/v1/intake/gci_nope/email", content=EMAIL)
    assert unknown_key.status_code == 404
    assert unknown_key.headers["content-type"] == "application/problem+json"
    unknown_kind = await client.post(intake_path(org, "fax"), content=EMAIL)
    assert unknown_kind.status_code == 404
    assert unknown_kind.json()["detail"] == "Unknown intake kind."
    nested = await client.post(intake_path(org, "twilio/fax"), content=EMAIL)
    assert nested.status_code == 404


async def test_body_over_the_cap_is_413(
    client: httpx.AsyncClient, org: OrgFixture, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    too_big = b"x" * (settings.webhook_max_bytes + 1)
    declared = await client.post(
        intake_path(org, "web-form"), content=too_big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"

    async def chunks() -> Any:  # no Content-Length: the cap is enforced while streaming
        for _ in range(settings.webhook_max_bytes // 65536 + 2):
            yield b"y" * 65536

    streamed = await client.post(
        intake_path(org, "zillow"), content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413
    # email kinds have the larger cap: a webhook-sized overflow is fine for them …
    fine = await client.post(
        intake_path(org, "email"),
        content=EMAIL + b"z" * settings.webhook_max_bytes,
        headers={"Content-Type": "message/rfc822"},
    )
    assert fine.status_code == 202
    # … but not past email_max_bytes
    huge = await client.post(
        intake_path(org, "email"),
        content=b"z" * (settings.email_max_bytes + 1),
        headers={"Content-Type": "message/rfc822"},
    )
    assert huge.status_code == 413
    assert len(await rows_for(sessionmaker, org)) == 1


SIGNED = [
    InboundKind.twilio_sms,
    InboundKind.twilio_voice,
    InboundKind.mailgun,
    InboundKind.callrail,
    InboundKind.webflow,
    InboundKind.ringcentral,
]


@pytest.mark.parametrize("kind", SIGNED, ids=lambda kind: kind.value)
async def test_signing_senders_fail_closed(
    kind: InboundKind, client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    case = first_signal_case(CASES, kind)
    path = intake_path(org, kind)
    raw = case.raw
    body, headers = sign(kind, path, raw.body, raw.content_type, dict(raw.headers), dict(raw.query))
    headers["Content-Type"] = raw.content_type
    query = dict(raw.query) or None

    # no secret configured: refused even with a well-formed signature
    missing = await client.post(path, content=body, headers=headers, params=query)
    assert missing.status_code == 401, missing.text
    assert missing.headers["content-type"] == "application/problem+json"

    # a signature made with another secret
    await set_secrets(client, org)
    wrong_secrets = {provider: secret + "-wrong" for provider, secret in SECRETS.items()}
    forged_body, forged = sign(
        kind, path, raw.body, raw.content_type, dict(raw.headers), dict(raw.query), wrong_secrets
    )
    forged["Content-Type"] = raw.content_type
    assert (await client.post(path, content=forged_body, headers=forged, params=query)).status_code == 401

    # no signature at all
    bare = {"Content-Type": raw.content_type}
    unsigned_body = raw.body if kind != InboundKind.mailgun else forged_body
    assert (await client.post(path, content=unsigned_body, headers=bare, params=query)).status_code == 401

    # the signed body with a byte changed (Mailgun signs no body: covered by the token test below)
    if kind not in (InboundKind.mailgun, InboundKind.ringcentral):
        tampered = body.replace(b"1", b"2", 1) if b"1" in body else body + b" "
        assert (await client.post(path, content=tampered, headers=headers, params=query)).status_code == 401

    assert await rows_for(sessionmaker, org) == []
    good = await client.post(path, content=body, headers=headers, params=query)
    assert good.status_code == success_status(kind), good.text
    assert len(await rows_for(sessionmaker, org)) == 1


async def test_twilio_signature_covers_the_query_string(client: httpx.AsyncClient, org: OrgFixture) -> None:
    await set_secrets(client, org)
    case = first_signal_case(CASES, InboundKind.twilio_sms)
    path = intake_path(org, InboundKind.twilio_sms)
    body, headers = sign(case.kind, path, case.raw.body, case.raw.content_type, {}, {"property": "maple"})
    headers["Content-Type"] = case.raw.content_type
    ok = await client.post(path, content=body, headers=headers, params={"property": "maple"})
    assert ok.status_code == 200
    moved = await client.post(path, content=body, headers=headers, params={"property": "oak"})
    assert moved.status_code == 401


async def test_mailgun_stale_timestamp_and_replayed_token(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await set_secrets(client, org)
    case = first_signal_case(CASES, InboundKind.mailgun)
    path = intake_path(org, InboundKind.mailgun)
    headers = {"Content-Type": case.raw.content_type}
    stale = mailgun_fields(case.raw.body, SECRETS["mailgun"], int(time.time()) - 3600)
    assert (await client.post(path, content=stale, headers=headers)).status_code == 401

    token = uuid.uuid4().hex
    signed = mailgun_fields(case.raw.body, SECRETS["mailgun"], int(time.time()), token)
    first = await client.post(path, content=signed, headers=headers)
    assert first.status_code == 200
    # Mailgun retrying the same message with the same token: same row, still 200
    again = await client.post(path, content=signed, headers=headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    # a captured token+signature reused with another message is refused
    other = next(
        c for c in CASES if c.kind == InboundKind.mailgun and c.name != case.name and c.raw.body != case.raw.body
    )
    replayed = mailgun_fields(other.raw.body, SECRETS["mailgun"], int(time.time()), token)
    assert (await client.post(path, content=replayed, headers=headers)).status_code == 401
    assert len(await rows_for(sessionmaker, org)) == 1


async def test_ringcentral_validation_handshake_echoes_and_stores_nothing(
    client: httpx.AsyncClient, org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.post(intake_path(org, "ringcentral"), headers={"Validation-Token": "vt-123"})
    assert response.status_code == 200
    assert response.headers["validation-token"] == "vt-123"
    assert response.content == b""
    assert await rows_for(sessionmaker, org) == []
    unknown = await client.post("/v1/intake/gci_nope/ringcentral", headers={"Validation-Token": "vt-123"})
    assert unknown.status_code == 404


async def test_integrations_are_write_only_and_admin_only(client: httpx.AsyncClient, org: OrgFixture) -> None:
    assert (await client.get("/v1/integrations", headers=org.headers)).json() == {"items": []}
    await set_secrets(client, org, {"twilio": "first", "callrail": "cr"})
    await set_secrets(client, org, {"twilio": "second"})
    listed = (await client.get("/v1/integrations", headers=org.headers)).json()["items"]
    assert [(item["provider"], item["configured"]) for item in listed] == [("callrail", True), ("twilio", True)]
    assert (
        "first" not in str(listed) and "second" not in str(listed) and "cr" not in str(listed).replace("callrail", "")
    )
    unknown = await client.put("/v1/integrations/fax", json={"signing_secret": "x"}, headers=org.headers)
    assert unknown.status_code == 422
    created = await client.post("/v1/api-keys", json={"name": "mgr", "role": "manager"}, headers=org.headers)
    manager = {"Authorization": f"Bearer {created.json()['key']}"}
    refused = await client.put("/v1/integrations/twilio", json={"signing_secret": "x"}, headers=manager)
    assert refused.status_code == 403
    assert (await client.delete("/v1/integrations/callrail", headers=org.headers)).status_code == 204
    assert (await client.delete("/v1/integrations/callrail", headers=org.headers)).status_code == 404
    assert (await client.put("/v1/integrations/twilio", json={}, headers=org.headers)).status_code == 422
    assert (await client.get("/v1/integrations")).status_code == 401


async def test_a_slow_upload_holds_no_database_connection(
    app_state: Any, client: httpx.AsyncClient, org: OrgFixture
) -> None:
    pool = app_state.engine.pool
    seen: list[int] = []

    async def slow_body() -> Any:
        yield b'{"first_name": "Slow", "email": "slow@example.com", '
        seen.append(pool.checkedout())  # the request is mid-upload here
        yield b'"submission_id": "slow-1"}'
        seen.append(pool.checkedout())

    answer = await client.post(
        f"/v1/intake/{org.intake_key}/web-form", content=slow_body(), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 202, answer.text
    assert seen == [0, 0]
