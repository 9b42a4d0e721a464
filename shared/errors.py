"""Typed domain errors. Each carries its HTTP status; one handler renders them as RFC 9457 problems."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    type_slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra
        self.headers: dict[str, str] = {}


class NotFound(DomainError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class Gone(DomainError):
    """The resource existed and was removed for good (an erased contact): 410, not 404, so a client can tell."""

    status = 410
    type_slug = "gone"
    title = "Gone"


class InvalidTransition(Conflict):
    type_slug = "invalid-transition"
    title = "Status change not allowed"


class DuplicateContact(Conflict):
    type_slug = "duplicate-contact"
    title = "A contact with this email or phone already exists"


class PreconditionFailed(DomainError):
    status = 412
    type_slug = "precondition-failed"
    title = "The resource changed since you read it"


class PreconditionRequired(DomainError):
    status = 428
    type_slug = "precondition-required"
    title = "If-Match header required"


class Unauthorized(DomainError):
    status = 401
    type_slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class PayloadTooLarge(DomainError):
    status = 413
    type_slug = "payload-too-large"
    title = "Payload too large"


class ValidationFailed(DomainError):
    status = 422
    type_slug = "validation-error"
    title = "Request validation failed"


class Unavailable(DomainError):
    status = 503
    type_slug = "unavailable"
    title = "Service unavailable"


class TooManyRequests(DomainError):
    status = 429
    type_slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.headers["Retry-After"] = str(retry_after)
