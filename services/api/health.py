"""Liveness and readiness for orchestrators and for people watching a restart.

`/healthz` is liveness: the process answers, nothing else is checked (a PostgreSQL or Redis outage must not
get the API killed: it rides the outage out). `/readyz` is readiness, per dependency: 503 while PostgreSQL
or Redis is unreachable or the schema is not at head, so a load balancer sends traffic elsewhere meanwhile.
The worker's heartbeat (arq's health-check key, refreshed every few seconds) is reported beside them but
does not make the API unready: intake is stored and acknowledged without a worker and processed once one
runs again.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from services.api.deps import StateDep
from shared.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 2.0  # seconds per dependency: a probe must answer even when a server hangs
HEALTH_CHECK_SUFFIX = ":health-check"  # arq's key: `<queue name>:health-check`


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(
        description="per dependency: `database`, `migrations`, `redis` (each `ok` or what is wrong) and "
        "`worker` (`ok`, `absent`: no heartbeat within the last few seconds, or `unknown` without Redis)"
    )


@router.get("/healthz", response_model=Liveness)
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Stays 200 while PostgreSQL or Redis is away."""
    return {"status": "ok"}


async def _database(state: Any) -> dict[str, str]:
    async with state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    revision = await current_revision(state.engine)
    head = head_revision()
    return {"database": "ok", "migrations": "ok" if revision == head else f"at {revision}, head is {head}"}


async def _redis(state: Any) -> dict[str, str]:
    assert state.queue is not None
    await state.queue.ping()
    beat = await state.queue.exists(state.settings.queue_name + HEALTH_CHECK_SUFFIX)
    return {"redis": "ok", "worker": "ok" if beat else "absent"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"description": "PostgreSQL or Redis is unreachable, or migrations are not at head"}},
)
async def readyz(state: StateDep) -> JSONResponse:
    """Readiness per dependency; 503 while PostgreSQL or Redis is unreachable or the schema is behind."""
    checks: dict[str, str] = {}
    try:
        checks.update(await asyncio.wait_for(_database(state), CHECK_TIMEOUT))
    except Exception as error:
        checks.update(database=f"unreachable: {type(error).__name__}", migrations="unknown")
    try:
        checks.update(await asyncio.wait_for(_redis(state), CHECK_TIMEOUT))
    except Exception as error:
        checks.update(redis=f"unreachable: {type(error).__name__}", worker="unknown")
    ready = all(checks[name] == "ok" for name in ("database", "migrations", "redis"))
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
