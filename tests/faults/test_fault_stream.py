"""The fault test, short form (the long form runs in .ci/run): 500 Twilio-signed deliveries into a real
`guestcard run` while the worker is kill -9'd, Redis and PostgreSQL are restarted and the API is kill -9'd.
0 lost, 0 doubled, every refusal one the sender retries. See tests/faults/harness.py.

It runs on its own private PostgreSQL and Redis (temp folder, free ports) whatever DATABASE_URL and
REDIS_URL say, so it never disturbs the rest of the suite or the machine's servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the supervised children in /proc")
def test_500_signed_deliveries_survive_killed_processes_and_restarted_servers() -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "tests.faults.harness", "--deliveries", "500", "--rate", "100", "--down-for", "0.5"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    assert '"lost": 0' in result.stdout and '"doubled_touches": 0' in result.stdout
