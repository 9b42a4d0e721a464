"""`POST /v1/intake/{intake_key}/{kind}` without FastAPI's routing and dependency machinery.

A burst of webhooks is the one place where the framework's per-request cost was most of the work: matching
the path against every route, solving dependencies, and the exception layers took about half of the accept
path's CPU. This pure-ASGI layer sits just inside the request-context middleware (request id, access log
and the route's latency histogram still apply) and answers the common case itself with the same
`service.accept` the route calls. Anything unusual (an unknown kind, an over-long key, a proxy prefix) is
handed on untouched to the FastAPI route, so its validation errors and 404s stay exactly the route's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.intake import service
from services.api.problems import domain_problem, failure_problem
from shared.enums import InboundKind
from shared.errors import DomainError

PREFIX = "/v1/intake/"
ROUTE_PATH = "/v1/intake/{intake_key}/{kind}"
KEY_MAX_LENGTH = 200  # the route's Path(max_length=200)
KINDS = {kind.value: kind for kind in InboundKind}


class IntakeRoute:
    """What the access log and the request histogram read from `scope["route"]`."""

    path = ROUTE_PATH
    name = "receive"


class IntakeFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = IntakeRoute()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope)
        if target is None:
            await self.app(scope, receive, send)
            return
        intake_key, kind = target
        scope["route"] = self.route
        request = Request(scope, receive)
        try:
            response = await service.accept(scope["app"].state.guestcard, request, intake_key, kind)
        except DomainError as error:
            response = domain_problem(error, scope["path"])
        except Exception as error:
            response = failure_problem(error)
        await response(scope, receive, send)

    @staticmethod
    def _target(scope: Scope) -> tuple[str, InboundKind] | None:
        """(intake key, kind) when the route would take this request with valid parameters, else None."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        path: str = scope["path"]
        if not path.startswith(PREFIX):
            return None
        intake_key, _, kind = path[len(PREFIX) :].partition("/")
        if not intake_key or len(intake_key) > KEY_MAX_LENGTH or kind not in KINDS:
            return None
        return intake_key, KINDS[kind]
