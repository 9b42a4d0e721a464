"""The hot reads for an admin's or manager's key, without FastAPI's routing and dependencies or the ORM: a lead
(`GET /v1/leads/{lead_id}`), its timeline's first page (`GET /v1/leads/{lead_id}/timeline`) and the list's first
page (`GET /v1/leads`), with no query string but, perhaps, a page size (`limit`).

A lead's detail is one indexed statement of ~0.3 ms; around it the framework spent ~2 ms of CPU: matching the
path against every route, solving the dependencies, the exception layers, building the statement again and
the ORM's execution. Front ends read a lead and its timeline far more often than they write one, so this
pure-ASGI layer (like services/api/intake/fast.py, inside the request-context middleware: request id, access
log and the route's latency histogram still apply) answers the common case itself:

- the statements are the routes' own (`queries.lead_select`, `queries.list_statement`, `timeline.events_query`)
  for the routes' defaults with the page size as a parameter, compiled once; they run on the statement pool
  (autocommit, no checkout ping, prepared once per connection), and each column passes through the result
  processor SQLAlchemy would have applied, so the rows are the ones the route reads;
- the bodies are `json_out`'s of those rows and the ETag is the route's: tests/leads/test_fast_reads.py holds
  the two answers equal byte for byte; a pooled connection that died in a PostgreSQL restart is replaced and
  the read runs once more (`shared.db.on_pool`, as for the accept path);
- the key must be in the principal cache (services/api/auth/cache.py: dropped at once on a revoke); the rate
  limit is asked while the statement runs, and a 429 outranks the answer, as on every read-only route.

Anything else (no key or an uncached one, an agent's key, whose scope needs the organization's setting, any
other query string, a path that is not a canonical UUID, a proxy prefix) is handed on untouched to the FastAPI
route, so its errors and its other answers stay exactly the route's.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import ARRAY, BindParameter, Select, String, bindparam
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.auth import cache as principal_cache
from services.api.auth.keys import hash_secret
from services.api.auth.service import Principal
from services.api.deps import rate_check
from services.api.leads import json_out, timeline
from services.api.leads.deps import etag
from services.api.leads.queries import DEFAULT_PAGE, MAX_PAGE, LeadFilters, lead_select, list_statement, next_cursor_for
from services.api.problems import domain_problem, failure_problem
from shared.db import on_pool
from shared.enums import Role
from shared.errors import DomainError, NotFound
from shared.models import Lead

LIST_PATH = "/v1/leads"
PREFIX = LIST_PATH + "/"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LIMIT = re.compile(rb"limit=([1-9][0-9]{0,2})")
_UNSCOPED = (Role.admin, Role.manager)  # owners/scope.lead_scope: no condition and no query for these roles
_DIALECT = asyncpg_dialect.dialect()
ORG: BindParameter[uuid.UUID] = bindparam("org_id")
LEAD: BindParameter[uuid.UUID] = bindparam("lead_id")
ROWS: BindParameter[int] = bindparam("rows")
# json and jsonb: SQLAlchemy's asyncpg dialect decodes them with a connection codec (json.loads) rather than a
# result processor; the statement pool has no codec (the accept path binds JSON text), so they are decoded here
_JSON_DECODE: dict[int, Callable[[Any], Any]] = {
    oid: lambda value: None if value is None else json.loads(value) for oid in (114, 3802)
}


class CompiledRead:
    """A SQLAlchemy statement compiled once for asyncpg: its rows (asyncpg records, or dicts where a column needed
    converting), each column as the result processor SQLAlchemy applies to it gives it (the processors are read
    once from the prepared statement's description)."""

    def __init__(self, statement: Select[Any]) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql = compiled.string
        self.parameters = list(compiled.positiontup or ())
        self.defaults = dict(compiled.params)  # values the statement carries itself, beside the named parameters
        self.types = {column.key: column.type.dialect_impl(_DIALECT) for column in statement.selected_columns}
        # asyncpg gives a text array as a list already: SQLAlchemy's processor would only copy it
        self.as_given = {key for key, type_ in self.types.items() if _is_text_array(type_)}
        self.processors: dict[str, Callable[[Any], Any]] | None = None

    async def fetch(self, connection: Any, values: dict[str, Any]) -> list[Any]:
        if self.processors is None:
            described = (await connection.prepare(self.sql)).get_attributes()
            found = {
                attribute.name: _JSON_DECODE.get(attribute.type.oid)
                or self.types[attribute.name].result_processor(_DIALECT, attribute.type.oid)
                for attribute in described
            }
            self.processors = {
                name: processor
                for name, processor in found.items()
                if processor is not None and name not in self.as_given
            }
        bound = {**self.defaults, **values}
        records = await connection.fetch(self.sql, *(bound[name] for name in self.parameters))
        if not self.processors:
            return records  # asyncpg's records read by column name like dicts
        processors = list(self.processors.items())
        rows = []
        for record in records:
            # a processor maps None to None: a record with nothing to convert is read as it is
            if all(record[name] is None for name, _ in processors):
                rows.append(record)
                continue
            row = dict(record)
            for name, processor in processors:
                row[name] = processor(row[name])
            rows.append(row)
        return rows


def _is_text_array(type_: Any) -> bool:
    return isinstance(type_, ARRAY) and isinstance(type_.item_type, String)


DETAIL = CompiledRead(lead_select(ORG).where(Lead.id == LEAD))
# the page size as a parameter (limit + 1 rows: whether a next page exists), in place of the routes' constant
LIST = CompiledRead(list_statement(ORG, LeadFilters(), DEFAULT_PAGE, None).limit(ROWS))
TIMELINE = CompiledRead(timeline.events_query(ORG, LEAD, [], None, timeline.DEFAULT_LIMIT).limit(ROWS))
LEAD_EXISTS = CompiledRead(timeline.lead_exists_query(ORG, LEAD))


class LeadRoute:
    """What the access log and the request histogram read from `scope["route"]`."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name


LIST_ROUTE = LeadRoute("/v1/leads", "list_leads")
DETAIL_ROUTE = LeadRoute("/v1/leads/{lead_id}", "get_lead")
TIMELINE_ROUTE = LeadRoute("/v1/leads/{lead_id}/timeline", "get_timeline")


async def detail(connection: Any, values: dict[str, Any]) -> Response | None:
    rows = await DETAIL.fetch(connection, values)
    if not rows:
        return None
    return json_out.json_response(json_out.lead_dict(rows[0]), headers={"ETag": etag(rows[0]["version"])})


async def list_page(connection: Any, values: dict[str, Any]) -> Response | None:
    rows = await LIST.fetch(connection, values)
    limit = values["rows"] - 1
    next_cursor = next_cursor_for(rows[limit - 1], LeadFilters().sort) if len(rows) > limit else None
    return json_out.page(map(json_out.lead_dict, rows[:limit]), next_cursor)


async def timeline_page(connection: Any, values: dict[str, Any]) -> Response | None:
    rows = await TIMELINE.fetch(connection, values)
    if not rows and not await LEAD_EXISTS.fetch(connection, values):
        return None
    page, next_cursor = timeline.page_of(rows, values["rows"] - 1)
    return json_out.page(map(json_out.event_dict, page), next_cursor)


ANSWERS = {LIST_ROUTE.name: list_page, DETAIL_ROUTE.name: detail, TIMELINE_ROUTE.name: timeline_page}


class LeadReadFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = _target(scope)
        principal = _cached_principal(scope) if target is not None else None
        if target is None or principal is None or principal.role not in _UNSCOPED:
            await self.app(scope, receive, send)
            return
        lead_id, route, limit = target
        scope["route"] = route
        state = scope["app"].state.guestcard
        answer = ANSWERS[route.name]
        values = {"org_id": principal.org_id, "lead_id": lead_id, "rows": limit + 1}
        rate = asyncio.ensure_future(rate_check(state, principal))
        try:
            try:
                # reads only: run once more on a fresh connection if the pooled one died (a restart)
                found = await on_pool(state.statement_pool, lambda connection: answer(connection, values))
            finally:
                await rate  # a 429 outranks the answer (and the handler's own error)
            if found is None:
                raise NotFound("Lead not found.")
            response = found
        except DomainError as error:
            response = domain_problem(error, scope["path"])
        except Exception as error:
            response = failure_problem(error)
        await response(scope, receive, send)


def _target(scope: Scope) -> tuple[uuid.UUID | None, LeadRoute, int] | None:
    """(lead id, route, page size) when one of the routes would take this request with a valid id and nothing
    else but, perhaps, a page size."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if path == LIST_PATH:
        limit = _page_size(scope.get("query_string", b""), DEFAULT_PAGE)
        return None if limit is None else (None, LIST_ROUTE, limit)
    if not path.startswith(PREFIX):
        return None
    text, _, rest = path[len(PREFIX) :].partition("/")
    route = DETAIL_ROUTE if not rest and not path.endswith("/") else TIMELINE_ROUTE if rest == "timeline" else None
    if route is None or len(text) != 36 or _UUID.fullmatch(text) is None:
        return None
    query = scope.get("query_string", b"")
    if route is DETAIL_ROUTE:
        return None if query else (uuid.UUID(text), route, 0)
    limit = _page_size(query, timeline.DEFAULT_LIMIT)
    return None if limit is None else (uuid.UUID(text), route, limit)


def _page_size(query: bytes, default: int) -> int | None:
    """The page size of a query string that is empty or exactly `limit=<n>` with a plain 1 <= n <= 500 (the
    routes' `Query(ge=1, le=500)`), else None: anything else is the route's to read (and maybe refuse)."""
    if not query:
        return default
    found = _LIMIT.fullmatch(query)
    if found is None or int(found.group(1)) > MAX_PAGE:
        return None
    return int(found.group(1))


def _cached_principal(scope: Scope) -> Principal | None:
    """The caller, when its bearer key is in the principal cache (deps.get_principal reads it the same way)."""
    authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
            break
    scheme, token = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer" or not token:
        return None
    return principal_cache.cache().get(hash_secret(token))
