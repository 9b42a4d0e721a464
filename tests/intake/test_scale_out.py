"""Scale-out stays safe (#16): 2 API processes and 2 workers on one database, the 200-signal race through
the whole path (webhook → inbox → batched worker jobs → batched apply) ends with exactly 20 contacts.

Real processes, as `guestcard run` starts them; the deliveries alternate between the two APIs, and each
worker hands off to its own API. Waiting is a deadline-bounded poll of the inbox (processes, not a burst
worker, so there is nothing to run to completion).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import Settings
from shared.models import Contact, InboundMessage, LeadEvent
from tests.conftest import OrgFixture

ROOT = Path(__file__).resolve().parents[2]
RENTERS = 20
TOUCHES = 200
DEADLINE_S = 240.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cluster(settings: Settings, tmp_path: Path) -> Iterator[list[str]]:
    ports = [_free_port(), _free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "GUESTCARD_SERVICE_TOKEN": "scale-out-service-token",
        "GUESTCARD_QUEUE": f"guestcard:test:scale:{uuid.uuid4().hex[:8]}",
        "GUESTCARD_DATA_DIR": str(tmp_path),
        "GUESTCARD_RATE_LIMIT_INTAKE_PER_SECOND": "100000",
        "GUESTCARD_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "services.cli"]
    processes: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "processes.log").open("ab")
    try:
        for port, url in zip(ports, urls, strict=True):
            processes.append(
                subprocess.Popen(
                    [*command, "api", "--host", "127.0.0.1", "--port", str(port)],
                    env={**env, "GUESTCARD_PUBLIC_URL": url},
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            processes.append(
                subprocess.Popen(
                    [*command, "worker"], env={**env, "GUESTCARD_API_URL": url}, cwd=ROOT, stdout=log, stderr=log
                )
            )
        deadline = time.monotonic() + 90
        for url in urls:
            while True:  # a deadline-bounded wait for each API to serve
                assert time.monotonic() < deadline, (tmp_path / "processes.log").read_text()[-3000:]
                assert all(process.poll() is None for process in processes), (tmp_path / "processes.log").read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def _form(renter: int, touch: int, run: str) -> dict[str, Any]:
    email = f"Scale{renter}.Renter@Example.com"
    digits = f"512555{renter + 700:04d}"
    base = {"submission_id": f"{run}-{renter}-{touch}", "message": "Is it available?"}
    match touch % 3:
        case 0:
            return {
                **base,
                "name": f"Scale Renter{renter}",
                "email": email.lower(),
                "phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
            }
        case 1:
            return {
                **base,
                "name": f"Scale Renter{renter}",
                "email": email.upper(),
                "phone": f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
            }
        case _:
            return {**base, "phone": f"+1{digits}"}


async def test_two_apis_and_two_workers_race_200_signals_into_exactly_20_contacts(
    cluster: list[str], org: OrgFixture, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    run = uuid.uuid4().hex[:8]
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in cluster]
    try:
        path = f"/v1/intake/{org.intake_key}/web-form"
        responses = await asyncio.gather(
            *(
                clients[index % 2].post(path, json=_form(index % RENTERS, index // RENTERS, run))
                for index in range(TOUCHES)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    assert [response.status_code for response in responses] == [202] * TOUCHES, responses[0].text

    deadline = time.monotonic() + DEADLINE_S
    left = TOUCHES
    while left and time.monotonic() < deadline:  # a deadline-bounded poll: the processes work meanwhile
        async with sessionmaker() as session:
            left = int(
                await session.scalar(
                    select(func.count())
                    .select_from(InboundMessage)
                    .where(InboundMessage.org_id == org.org_id, InboundMessage.status == "received")
                )
                or 0
            )
        await asyncio.sleep(0.25)
    async with sessionmaker() as session:
        statuses = dict(
            (
                await session.execute(
                    select(InboundMessage.status, func.count())
                    .where(InboundMessage.org_id == org.org_id)
                    .group_by(InboundMessage.status)
                )
            ).all()
        )
        contacts = await session.scalar(select(func.count()).select_from(Contact).where(Contact.org_id == org.org_id))
        touches = await session.scalar(
            select(func.count())
            .select_from(LeadEvent)
            .where(LeadEvent.org_id == org.org_id, LeadEvent.actor_type == "renter")
        )
    assert statuses == {"processed": TOUCHES}
    assert contacts == RENTERS
    assert touches == TOUCHES
