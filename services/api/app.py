"""The FastAPI app factory. Routers are thin; services own the logic; the request owns the transaction."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from services.api import health
from services.api.access import document_refusals
from services.api.auth import cache as principal_cache
from services.api.auth.router import router as auth_router
from services.api.intake.fast import IntakeFastPath
from services.api.leads.fast import LeadReadFastPath
from services.api.metrics.dashboard import router as dashboard_router
from services.api.metrics.prometheus import router as prometheus_router
from services.api.middleware import RequestContextMiddleware
from services.api.problems import PROBLEM_RESPONSES, install_problem_handlers
from services.api.properties.router import router as properties_router
from services.api.state import AppState
from shared import crypto, redis_calls
from shared.config import Settings, get_settings
from shared.db import make_engine, make_sessionmaker, make_statement_pool
from shared.logging import configure_logging
from shared.queue import open_queue
from shared.service_token import resolve_service_token

API_VERSION = "0.1.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_json)
        crypto.configure(settings)
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError("DATABASE_URL and REDIS_URL must be set (guestcard run starts embedded ones)")
        engine = make_engine(settings.database_url, settings.db_pool_size)
        statement_pool = await make_statement_pool(settings.database_url, settings.db_pool_size)
        queue = open_queue(settings.redis_url)  # lazy: the API starts and serves while Redis is away
        principal_cache.configure(settings.principal_cache_seconds)
        listener = principal_cache.start_listener(queue)
        # what startup built (routes, models, compiled SQL) lives as long as the process: out of the cyclic
        # collector's reach, a full collection walks only what requests make (the list's p99 tail)
        gc.collect()
        gc.freeze()
        app.state.guestcard = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            read_sessionmaker=make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT")),
            queue=queue,
            service_token=resolve_service_token(settings),
            statement_pool=statement_pool,
        )
        try:
            yield
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            await redis_calls.close(queue)
            await queue.aclose()
            await statement_pool.close()
            await engine.dispose()

    app = FastAPI(
        title="guestcard",
        version=API_VERSION,
        description=("Lead intake and leasing pipeline for apartment operators. Errors are RFC 9457 problem+json."),
        lifespan=lifespan,
    )
    app.add_middleware(LeadReadFastPath)  # both inside the request context: ids, access log and histograms apply
    app.add_middleware(IntakeFastPath)
    app.add_middleware(RequestContextMiddleware)
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(prometheus_router)  # GET /metrics
    app.include_router(dashboard_router)  # GET /dashboard (HTML, not in the OpenAPI document)
    for router in [auth_router, properties_router, *_domain_routers()]:
        app.include_router(router, responses=PROBLEM_RESPONSES)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return document_refusals(generate())  # the role matrix's 403s, in the contract

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _domain_routers() -> list[APIRouter]:
    """Routers of the domain modules, added here as each lands."""
    from services.api.audit.router import router as audit_router
    from services.api.automation.router import lead_router as automation_lead_router
    from services.api.automation.router import router as automation_router
    from services.api.blocklist.router import router as blocklist_router
    from services.api.contacts.router import router as contacts_router
    from services.api.imports.batch_router import router as import_batches_router
    from services.api.imports.router import router as imports_router
    from services.api.inbound.router import router as inbound_router
    from services.api.intake.router import router as intake_router
    from services.api.integrations.router import router as integrations_router
    from services.api.leads.router import router as leads_router
    from services.api.leads.work_router import router as lead_work_router
    from services.api.merges.router import router as merges_router
    from services.api.messaging.router import router as messaging_router
    from services.api.metrics.router import router as metrics_router
    from services.api.metrics.router import sources_router as metrics_sources_router
    from services.api.mits.router import router as mits_router
    from services.api.owners.links import router as owner_links_router
    from services.api.owners.router import router as owners_router
    from services.api.review.router import router as review_router
    from services.api.signals.router import router as signals_router
    from services.api.status_labels.router import router as status_labels_router
    from services.api.tasks.router import router as tasks_router
    from services.api.tours.router import router as tours_router
    from services.api.units.router import router as units_router
    from services.api.webhooks.router import events_router
    from services.api.webhooks.router import router as webhooks_router

    return [
        mits_router,  # before leads_router: /v1/leads/mits must not be read as a lead id
        imports_router,
        signals_router,
        leads_router,
        review_router,
        merges_router,
        blocklist_router,
        inbound_router,
        intake_router,
        integrations_router,
        lead_work_router,
        tasks_router,
        tours_router,
        contacts_router,
        status_labels_router,
        metrics_router,
        audit_router,
        automation_router,
        automation_lead_router,
        webhooks_router,
        events_router,
        import_batches_router,
        owners_router,
        owner_links_router,
        metrics_sources_router,
        messaging_router,
        units_router,
    ]
