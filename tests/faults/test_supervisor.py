"""`guestcard run`'s supervisor: a crashed child comes back with backoff; stopping stops all of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from services import supervisor as supervision
from services.supervisor import Supervisor


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _crasher() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])


def _until(supervisor: Supervisor, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        supervisor.tick()
        time.sleep(0.02)


def test_a_killed_child_is_restarted_and_stop_all_stops_everyone() -> None:
    supervisor = Supervisor()
    api = supervisor.add("api", _sleeper)
    worker = supervisor.add("worker", _sleeper)
    supervisor.start_all()
    try:
        assert api.process is not None and worker.process is not None
        first_pid = worker.process.pid
        os.kill(first_pid, signal.SIGKILL)
        _until(supervisor, lambda: worker.process is not None and worker.process.pid != first_pid)
        assert worker.restarts == 1
        assert api.restarts == 0  # the others keep running: nothing else was stopped
        assert api.process.poll() is None
    finally:
        supervisor.stop_all(grace=5)
    assert all(child.process is None or child.process.poll() is not None for child in supervisor.children)
    supervisor.tick()  # once stopping, nothing is restarted
    assert all(child.process is None or child.process.poll() is not None for child in supervisor.children)


def test_a_crash_loop_backs_off_and_a_stable_run_resets_the_backoff(monkeypatch: object) -> None:
    supervisor = Supervisor()
    child = supervisor.add("worker", _crasher)
    supervisor.start_all()
    delays: list[float] = []
    try:
        for expected_restarts in (1, 2, 3):
            _until(supervisor, lambda n=expected_restarts: child.restarts >= n and child.process is not None)
            assert child.restart_at is None
            delays.append(child.failures)
        assert delays == [1, 2, 3]  # consecutive short runs grow the backoff exponent
        _until(supervisor, lambda: child.restart_at is not None)
        assert child.restart_at is not None
        # a run longer than STABLE_AFTER_SECONDS starts over at the first step
        child.process, child.restart_at = _crasher(), None
        child.started_at = time.monotonic() - supervision.STABLE_AFTER_SECONDS - 1
        child.process.wait()
        supervisor.tick()
        assert child.failures == 1
    finally:
        supervisor.stop_all(grace=5)
