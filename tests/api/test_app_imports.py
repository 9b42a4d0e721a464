"""The API does not import the worker: building the app loads no `services.intake` module (issue #16).

Run in a fresh interpreter: the test process has long imported the worker for other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, sys\n"
    "from services.api.app import create_app\n"
    "create_app()\n"
    "print(json.dumps(sorted(m for m in sys.modules if m == 'services.intake' or m.startswith('services.intake.'))))\n"
)


def test_building_the_app_imports_no_intake_worker_module() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"the API loaded worker modules: {loaded}"
