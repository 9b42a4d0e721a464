"""Request dependencies: the unit of work, the caller, and role checks."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import ratelimit
from services.api.audit.service import record_write
from services.api.auth import cache as principal_cache
from services.api.auth.keys import hash_secret
from services.api.auth.service import Principal, principal_for_key
from services.api.state import AppState
from shared.enums import Role
from shared.errors import Forbidden, Unauthorized
from shared.queue import send_jobs, take_pending_jobs

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


async def get_state(request: Request) -> AppState:
    """Async on purpose: FastAPI runs a plain `def` dependency in its thread pool (a thread hop per request)."""
    return state_of(request)


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.guestcard
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def read_only(endpoint: _Endpoint) -> _Endpoint:
    """Mark a route that only reads: its session runs without a transaction (autocommit), which saves the
    BEGIN and COMMIT round trips. Each statement then sees its own snapshot, so use it where one statement
    answers (or where statements cannot disagree in a way that matters) and nothing is written."""
    endpoint.read_only = True  # type: ignore[attr-defined]
    return endpoint


async def _unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: commit after the handler, then send the jobs it queued."""
    state = state_of(request)
    if _is_read_only(request):
        async with (state.read_sessionmaker or state.sessionmaker)() as session:
            try:
                yield session
            except Exception:
                await _rate_checked(request)  # a 429 outranks what the handler raised
                raise
            await _rate_checked(request)
        return
    async with state.sessionmaker() as session:
        async with session.begin():
            yield session
            record_write(session, request)  # reached only when the handler succeeded: same commit
        await send_jobs(state.queue, take_pending_jobs(session), state.settings.queue_name)
        await principal_cache.after_commit(session, state.queue)


def _is_read_only(request: Request) -> bool:
    return bool(getattr(request.scope.get("endpoint"), "read_only", False))


async def _rate_checked(request: Request) -> None:
    check: asyncio.Task[None] | None = getattr(request.state, "rate_check", None)
    if check is not None:
        request.state.rate_check = None
        await check


SessionDep = Annotated[AsyncSession, Depends(_unit_of_work, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer gck_…`")


async def get_principal(
    request: Request,
    session: SessionDep,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Missing bearer API key.")
    key_hash = hash_secret(credentials.credentials)
    principal = await principal_cache.cache().get_or_read(
        key_hash, lambda: principal_for_key(session, credentials.credentials)
    )
    if principal is None:
        raise Unauthorized("Unknown or revoked API key.")
    request.state.principal = principal  # for the audit trail
    check = rate_check(state, principal)
    if _is_read_only(request):
        # a read has no side effect: ask Redis while the query runs, and refuse (429) before answering
        request.state.rate_check = asyncio.ensure_future(check)
    else:
        await check
    return principal


async def rate_check(state: AppState, principal: Principal) -> None:
    """The API rate limit of the caller's key (429 when over it)."""
    settings = state.settings
    await ratelimit.check(
        state.queue, "api", str(principal.key_id), settings.rate_limit_api_per_second, settings.rate_limit_api_burst
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"This action needs one of the roles: {', '.join(roles)}.")
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require_role(Role.admin))]
ManagerDep = Annotated[Principal, Depends(require_role(Role.admin, Role.manager))]


async def require_service_token(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Worker→API calls carry the shared service token, never an organization key."""
    if credentials is None or not hmac.compare_digest(credentials.credentials, state.service_token):
        raise Unauthorized("Service token required.")


ServiceDep = Annotated[None, Depends(require_service_token)]
