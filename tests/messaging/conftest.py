"""Messaging fixtures: a fake Twilio at the configured base URL, an SMTP sink, worker contexts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import Settings
from tests.conftest import OrgFixture
from tests.intake.test_intake_support import PUBLIC_URL, SERVICE_TOKEN
from tests.messaging.fakes import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    FakeTwilio,
    SmtpSink,
    start_fake_twilio,
    start_smtp_sink,
)


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake, server, task = await start_fake_twilio()
    try:
        yield fake
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink, controller = start_smtp_sink()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def msg_settings(settings: Settings, twilio: FakeTwilio) -> Settings:
    return settings.model_copy(update={"twilio_api_url": twilio.url})


@pytest.fixture
def job_ctx(msg_settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """What arq hands a job: settings, the sessionmaker, no Redis (jobs queued by a job are dropped)."""
    return {"settings": msg_settings, "sessionmaker": sessionmaker, "job_try": 1}


@pytest.fixture
async def service_api(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=PUBLIC_URL,
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    ) as api:
        yield api


async def use_twilio(client: httpx.AsyncClient, org: OrgFixture) -> None:
    response = await client.put(
        "/v1/integrations/messaging/sms",
        json={"provider": "twilio", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": FROM_NUMBER},
        headers=org.headers,
    )
    assert response.status_code == 200, response.text


async def use_smtp(client: httpx.AsyncClient, org: OrgFixture, sink_port: int) -> None:
    response = await client.put(
        "/v1/integrations/messaging/email",
        json={
            "provider": "smtp",
            "host": "127.0.0.1",
            "port": sink_port,
            "username": None,
            "password": "smtp-secret",
            "from_email": "leasing@acme.example",
            "from_name": "Acme Leasing",
        },
        headers=org.headers,
    )
    assert response.status_code == 200, response.text
