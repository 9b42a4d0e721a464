"""CPU seconds by component over a measured window: where the two cores went (API, worker, PostgreSQL,
Redis, the bench's own load generator, and everything else on the machine)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import psutil


def _component(process: psutil.Process, pids: dict[int, str]) -> str:
    if process.pid in pids:
        return pids[process.pid]
    try:
        name = process.name()
        if name.startswith("postgres"):  # before the parent: the embedded servers are the bench's children
            return "postgresql"
        if name.startswith("redis"):
            return "redis"
        if process.ppid() in pids:  # uvicorn's worker processes count as the API
            return pids[process.ppid()]
    except psutil.Error:
        return "other"
    return "other"


def _snapshot(pids: dict[int, str]) -> dict[int, tuple[str, float]]:
    seen = {}
    for process in psutil.process_iter():
        try:
            times = process.cpu_times()
            seen[process.pid] = (_component(process, pids), times.user + times.system)
        except psutil.Error:
            continue
    return seen


@dataclass
class CpuMeter:
    """Start before the load, stop after: CPU seconds per component, processes that came and went included."""

    pids: dict[int, str] = field(default_factory=dict)
    _before: dict[int, tuple[str, float]] = field(default_factory=dict)
    _wall: float = 0.0

    def start(self) -> None:
        self.pids.setdefault(os.getpid(), "bench")
        self._before = _snapshot(self.pids)
        self._wall = psutil.cpu_times().idle

    def stop(self) -> dict[str, float]:
        after = _snapshot(self.pids)
        used: dict[str, float] = {}
        for pid, (component, seconds) in after.items():
            base = self._before.get(pid, (component, 0.0))[1]
            used[component] = used.get(component, 0.0) + max(0.0, seconds - base)
        used["idle"] = psutil.cpu_times().idle - self._wall
        return {key: round(value, 2) for key, value in sorted(used.items())}
