"""What every job gets: settings, the database, the API client. Built once per worker process."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from services.intake.client import build_api_client
from services.intake.jobs import HANDOFFS_IN_FLIGHT
from shared import crypto, redis_calls
from shared.config import Settings, get_settings
from shared.db import make_engine, make_sessionmaker
from shared.logging import configure_logging


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    crypto.configure(settings)
    assert settings.database_url, "DATABASE_URL must be set for the worker"
    ctx["settings"] = settings
    ctx["engine"] = make_engine(settings.database_url, pool_size=max(2, settings.worker_max_jobs // 5))
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])
    # shared by every job of this process: arq hands each job a shallow copy of this dict
    ctx.setdefault("org_config_cache", {})
    ctx.setdefault("claimed_rows", set())  # rows leased by a batch of this process (jobs.process_inbound)
    ctx.setdefault("handoff_gate", asyncio.Semaphore(HANDOFFS_IN_FLIGHT))
    ctx.setdefault("org_gates", weakref.WeakValueDictionary())  # jobs.process_inbound's per-organization turns
    ctx.setdefault("drains", {})  # each organization's running drain in this process (jobs.drain_inbound)
    if "api" not in ctx:
        ctx["api"] = build_api_client(settings)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    api = ctx.get("api")
    if api is not None and ctx.get("owns_api", True):
        await api.aclose()
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()
    if ctx.get("redis") is not None:  # the wake's kept connections (shared/redis_calls.py); arq closes its pool
        await redis_calls.close(ctx["redis"])
