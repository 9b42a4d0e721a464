"""`guestcard run`'s process supervisor: a crashed child (API, worker, embedded Redis) is restarted with
jittered backoff instead of stopping everything; a signal to the supervisor stops them all, cleanly.

Children run in their own session, so a terminal's Ctrl-C reaches only the supervisor, which then stops
them in order with SIGTERM (SIGKILL after a grace period). On Linux each child also dies with the
supervisor if that is SIGKILLed (PR_SET_PDEATHSIG), so nothing is left orphaned.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.logging import get_logger
from shared.outage import jittered_backoff

log = get_logger(__name__)

STABLE_AFTER_SECONDS = 30.0  # a child that ran this long starts its backoff from the beginning again
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # consecutive short-lived runs
    restarts: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def add(self, name: str, start: Callable[[], subprocess.Popen[bytes]]) -> Child:
        child = Child(name, start)
        self.children.append(child)
        return child

    def start_all(self) -> None:
        for child in self.children:
            self._start(child)

    def _start(self, child: Child) -> None:
        child.process = child.start()
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info("run.child_started", child=child.name, pid=child.process.pid, restarts=child.restarts)

    def tick(self) -> None:
        """Notice exited children and restart each once its backoff has passed. Call it a few times a second."""
        now = time.monotonic()
        for child in self.children:
            if self.stopping:
                return
            process = child.process
            if process is not None and process.poll() is not None:
                ran = now - child.started_at
                child.failures = 1 if ran >= STABLE_AFTER_SECONDS else child.failures + 1
                delay = jittered_backoff(child.failures, base=BACKOFF_BASE, cap=BACKOFF_CAP)
                child.restart_at = now + delay
                child.process = None
                log.warning(
                    "run.child_exited",
                    child=child.name,
                    returncode=process.returncode,
                    ran_seconds=round(ran, 1),
                    restart_in=round(delay, 2),
                )
            if child.process is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                try:
                    self._start(child)
                except Exception as error:  # e.g. a port still taken: try again later
                    child.failures += 1
                    child.restart_at = now + jittered_backoff(child.failures, base=BACKOFF_BASE, cap=BACKOFF_CAP)
                    log.warning("run.child_start_failed", child=child.name, error=type(error).__name__)

    def run_until_stopped(self, interval: float = 0.2) -> None:
        while not self.stopping:
            self.tick()
            time.sleep(interval)

    def stop(self, *_: object) -> None:
        self.stopping = True

    def stop_all(self, grace: float = 15.0) -> None:
        """Stop children in the reverse order they were added (worker, API, then the servers they use):
        SIGTERM, then SIGKILL if one outlives `grace` seconds."""
        self.stopping = True
        for child in reversed(self.children):
            process = child.process
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.info("run.child_stopped", child=child.name, returncode=process.returncode)
