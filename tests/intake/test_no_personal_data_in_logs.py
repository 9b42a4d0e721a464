"""The whole intake corpus through the real path with logs captured: no renter's email or phone in any line."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import services.api.intake.service as intake_service
from shared.config import Settings
from tests.conftest import OrgFixture
from tests.corpus.loader import load_corpus
from tests.intake.test_intake_support import post_case, set_secrets
from tests.intake.test_pipeline_e2e import run_burst_worker, service_api  # noqa: F401 - fixture

CASES = load_corpus()
E164 = re.compile(r"^\+\d{8,15}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)


def _personal(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _personal(item, found)
    elif isinstance(value, list):
        for item in value:
            _personal(item, found)
    elif isinstance(value, str):
        if EMAIL.match(value):
            found.add(value.lower())
        elif E164.match(value):
            found.add(value)
            found.add(value[-10:])  # the national digits, as a sender may have written them


async def test_no_email_or_phone_of_the_corpus_reaches_a_log_line(
    client: httpx.AsyncClient,
    service_api: httpx.AsyncClient,  # noqa: F811
    org: OrgFixture,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    personal: set[str] = set()
    for case in CASES:
        _personal(case.expected.get("signal", {}), personal)
    assert len(personal) > 50, "the corpus should name many renters"
    await set_secrets(client, org)
    capfd.readouterr()  # only what this run logs
    for case in CASES:
        monkeypatch.setattr(intake_service, "now", time.time)
        response = await post_case(client, org, case)
        assert response.status_code in (200, 202), f"{case}: {response.text}"
    await run_burst_worker(settings, service_api)
    out, err = capfd.readouterr()
    logs = (out + err).lower()
    assert "intake.stored" in logs, "logs were captured"
    leaked = sorted(value for value in personal if value.lower() in logs)
    assert not leaked, f"personal data in logs: {len(leaked)} values, e.g. {leaked[:3]}"
