"""One module per scenario, each exposing TITLE and `async def run(context, report)`."""

from __future__ import annotations

import importlib
from types import ModuleType

NAMES = ["intake", "speed_to_lead", "burst", "reads", "export", "dedup", "imports", "metrics"]


def load(name: str) -> ModuleType:
    return importlib.import_module(f"bench.scenarios.{name}")
