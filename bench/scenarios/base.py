"""What scenarios share: the run's context, the dataset, endpoint detection, round counts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bench.env import Servers, app_paths, find_path

ROUNDS = {"quick": 3, "full": 5}
NOT_ON_MAIN = "skipped: endpoint not on main yet"


@dataclass
class Context:
    mode: str
    servers: Servers
    rounds: int | None = None
    regenerate: bool = False
    # leads/s the run's intake scenario applied, by kind of delivery: speed_to_lead reads its rates beside them
    applied: dict[str, float] = field(default_factory=dict)
    _dataset: dict[str, Any] | None = None
    _paths: set[str] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def n_rounds(self) -> int:
        return self.rounds or ROUNDS[self.mode]

    async def dataset(self) -> dict[str, Any]:
        """The read dataset of this mode (built once, reused across runs while it matches)."""
        async with self._lock:
            if self._dataset is None:
                from bench.generate import ensure_dataset

                self._dataset = await ensure_dataset(self.servers, self.mode, force=self.regenerate)
                self.regenerate = False
            return self._dataset

    def paths(self) -> set[str]:
        if self._paths is None:
            self._paths = app_paths()
        return self._paths

    def route(self, *fragments: str) -> str | None:
        return find_path(self.paths(), *fragments)
