"""schemathesis, all checks, every operation and stateful links, against a real `guestcard api` process.

The budget is bounded (GUESTCARD_SCHEMATHESIS_EXAMPLES per operation, 8 by default; `.ci/run` runs a longer
pass) and the seed fixed so a red run replays; any failure (5xx, undocumented status, schema drift, wrong
Allow…) fails the test with schemathesis' own report.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import crypto
from shared.config import Settings
from tests.conftest import ROOT, make_org

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_schemathesis_finds_nothing(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    org = await make_org(sessionmaker, "Schemathesis")
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "GUESTCARD_QUEUE": settings.queue_name,
        "GUESTCARD_DATA_DIR": str(tmp_path),
        # the same keyring as this test process: secrets the run stores must stay readable to the suite's
        # `guestcard secrets rotate` test, which walks every organization in the database
        "GUESTCARD_ENCRYPTION_KEYS": ",".join(key.decode() for key in crypto._keys(settings)),
        "GUESTCARD_LOG_LEVEL": "WARNING",
        "GUESTCARD_RATE_LIMIT_API_PER_SECOND": "0",
        "PORT": str(port),
    }
    api = subprocess.Popen([BIN / "guestcard", "api"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                async with httpx.AsyncClient() as probe:
                    if (await probe.get(f"{base}/healthz", timeout=1)).status_code == 200:
                        break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.2)  # noqa: ASYNC251 - waiting for a child process to listen
        examples = os.environ.get("GUESTCARD_SCHEMATHESIS_EXAMPLES", "8")
        run = subprocess.run(  # noqa: ASYNC221
            [
                BIN / "schemathesis",
                "--no-color",
                "run",
                str(ROOT / "openapi.yaml"),
                "--url",
                base,
                "-H",
                f"Authorization: Bearer {org.api_key}",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                examples,
                "--seed",
                os.environ.get("GUESTCARD_SCHEMATHESIS_SEED", "20261130"),
                "--workers",
                "1",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        failures = run.stdout.split("= FAILURES =", 1)[-1].split("= WARNINGS =", 1)[0]
        assert run.returncode == 0, failures[:12000] + run.stdout[-3000:]
        assert "passed" in run.stdout
    finally:
        api.terminate()
        api.wait(timeout=20)
