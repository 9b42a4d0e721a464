"""RFC 9457 problem+json for every error, with the field at fault in `errors[]`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.routing import allowed_methods
from shared.errors import DomainError
from shared.logging import get_logger
from shared.outage import OUTAGE_TYPES, is_database_outage, is_outage

log = get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://guestcard.dev/problems/"
# seconds a client (an ILS, Twilio, a form) is told to wait when PostgreSQL or Redis is away
RETRY_AFTER_SECONDS = 5


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_slug if type_slug else "about:blank",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update({key: value for key, value in extra.items() if value is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def outage_response(error: BaseException) -> JSONResponse:
    """PostgreSQL or Redis is away (a restart): 503 + Retry-After, which every sender retries. Nothing was
    acknowledged, so an intake delivery is never a 2xx without its row."""
    log.warning("api.dependency_unavailable", error_type=type(error).__name__)
    return problem_response(
        503,
        "Service unavailable",
        "A backing service is briefly unavailable; retry after the delay in Retry-After.",
        type_slug="unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location)


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    result = []
    for item in error.errors():
        result.append(
            {
                "field": _field_path(item.get("loc", ())),
                "message": item.get("msg", ""),
                "code": item.get("type"),
            }
        )
    return result


def domain_problem(error: DomainError, path: str) -> JSONResponse:
    """A refusal the code raised on purpose, as problem+json (`path`: the request's, for `instance`)."""
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    headers.update(error.headers)
    if error.status == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return problem_response(
        error.status,
        error.title,
        error.detail,
        type_slug=error.type_slug,
        errors=error.errors,
        instance=path if error.status != 401 else None,
        headers=headers or None,
        **error.extra,
    )


def failure_problem(error: Exception) -> JSONResponse:
    """Anything else: an outage of PostgreSQL or Redis is a 503 the sender retries, the rest a logged 500."""
    if is_outage(error):
        return outage_response(error)
    log.exception("api.unhandled_error", error_type=type(error).__name__)
    return problem_response(500, "Internal server error", "An unexpected error occurred; it was logged.")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> JSONResponse:
        return domain_problem(error, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        if any(item.get("loc", ("",))[0] == "path" and item.get("type") == "uuid_parsing" for item in error.errors()):
            return _no_such_resource(request)
        return problem_response(
            422,
            "Request validation failed",
            "One or more fields are invalid.",
            type_slug="validation-error",
            errors=_validation_errors(error),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        title = {400: "Malformed request", 404: "Not found", 405: "Method not allowed"}.get(
            error.status_code, "HTTP error"
        )
        detail = error.detail if isinstance(error.detail, str) else None
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope["path"]) or [])
        return problem_response(error.status_code, title, detail, headers=headers or None)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, error: DBAPIError) -> JSONResponse:
        """SQLSTATE class 22 (data exception: a NUL in text, a number out of range) is the caller's input."""
        if is_database_outage(error):
            return outage_response(error)
        sqlstate = str(getattr(error.orig, "sqlstate", "") or "")
        if not sqlstate.startswith("22"):
            return await unexpected(request, error)
        log.info("api.data_error", sqlstate=sqlstate)
        return problem_response(
            422,
            "Request validation failed",
            "A value cannot be stored: it contains a NUL character or is out of range.",
            type_slug="validation-error",
            errors=[{"field": "body", "message": "a value contains a NUL character or is out of range"}],
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return failure_problem(error)

    for kind in OUTAGE_TYPES:  # answered here, not re-raised past the middleware like a 500
        app.add_exception_handler(kind, unexpected)


def _no_such_resource(request: Request) -> JSONResponse:
    """A segment that is not a UUID where the route wants one: another resource's name (405) or nothing (404)."""
    methods = allowed_methods(request.app, request.scope["path"])
    if methods is None:
        return problem_response(404, "Not found", "No such resource.")
    return problem_response(405, "Method not allowed", "Method Not Allowed", headers={"Allow": ", ".join(methods)})


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="one entry per field at fault: field, message, code")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed request body (not parseable as its media type)"),
    401: _problem("Missing or invalid credentials"),
    404: _problem("Not found (also for other organizations' objects)"),
    422: _problem("Invalid input; `errors[]` names each field"),
    429: _problem("Over the API key's rate limit; retry after `Retry-After` seconds"),
    503: _problem("PostgreSQL or Redis is briefly unavailable; retry after `Retry-After` seconds"),
}
