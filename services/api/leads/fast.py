"""The hot reads, without FastAPI's routing and dependencies or the ORM: a lead
(`GET /v1/leads/{lead_id}`), its timeline (`GET /v1/leads/{lead_id}/timeline`: types, cursor, page size)
and the list (`GET /v1/leads`: its page size, cursor, sort, search and every filter).

A lead's detail is one indexed statement of ~0.3 ms; around it the framework spent ~2 ms of CPU: matching the
path against every route, solving the dependencies, the exception layers, building the statement again and
the ORM's execution. Front ends read a lead and its timeline far more often than they write one, so this
pure-ASGI layer (like services/api/intake/fast.py, inside the request-context middleware: request id, access
log and the route's latency histogram still apply) answers the common case itself:

- the statements are the routes' own (`queries.lead_select`, `queries.list_statement`, `timeline.events_query`),
  compiled once with the page size as a parameter. The list's is compiled once per shape of its filters
  (`queries.filter_terms`: which conditions, how many search patterns, the sort, a cursor or not), every value a
  named parameter (`by_name`): building and compiling the statement cost ~0.3-0.6 ms a request, binding ~15 µs.
  A search's patterns are written into the SQL for each request, as the route writes them (the planner must see
  them). They run on the statement pool (autocommit, no checkout ping, prepared once per connection), and each
  column passes through the result processor SQLAlchemy would have applied, so the rows are the route's;
- the bodies are `json_out`'s of those rows and the ETag is the route's: tests/leads/test_fast_reads.py holds
  the two answers equal byte for byte; a pooled connection that died in a PostgreSQL restart is replaced and
  the read runs once more (`shared.db.on_pool`, as for the accept path);
- the key is read as the route's dependency reads it: from the principal cache (services/api/auth/cache.py:
  dropped at once on a revoke), or once from the database (`auth.service.principal_select`) and kept there, so
  a screen polling every 30 s, past the cache's few seconds, is still answered here; the rate limit is asked
  while the statement runs, and a 429 outranks the answer, as on every read-only route;
- an agent's reads carry the owners' scope (`owners.scope.agent_scope`, its user a parameter), unless the
  organization's `agents_see_all`, read with each request as the route reads it, says otherwise.

Anything else (no key or an unknown or revoked one, an agent key that belongs to no user, a query string this
layer does not read exactly as the route would (`_list_request`), a path that is not a canonical UUID, a proxy
prefix) is handed on untouched to the FastAPI route, so its errors and other answers stay the route's. A cursor
that is not one is the exception: the same 422 problem, answered here.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, get_args
from urllib.parse import parse_qsl

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import ARRAY, BindParameter, Select, String, bindparam, select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.auth import cache as principal_cache
from services.api.auth.keys import hash_secret
from services.api.auth.service import Principal, principal_of, principal_select
from services.api.deps import rate_check
from services.api.leads import json_out, timeline
from services.api.leads.deps import etag
from services.api.leads.queries import (
    DEFAULT_PAGE,
    MAX_PAGE,
    PHONE_CANDIDATES,
    LeadFilters,
    LeadSort,
    cursor_values,
    few_contacts,
    filter_shape,
    filter_terms,
    lead_select,
    list_statement,
    next_cursor_for,
    phone_contacts,
    phone_prefix_patterns,
    term_values,
)
from services.api.owners.scope import agent_scope, agent_scope_parts
from services.api.problems import domain_problem, failure_problem
from services.api.types import IsoDateTime
from shared.db import on_pool
from shared.enums import ContactKind, EventType, LeadStatus, Role, Temperature
from shared.errors import DomainError, NotFound
from shared.models import Lead, LeadEvent, Organization

LIST_PATH = "/v1/leads"
PREFIX = LIST_PATH + "/"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LIMIT_VALUE = re.compile(r"[1-9][0-9]{0,2}")
_UNSCOPED = (Role.admin, Role.manager)  # owners/scope.lead_scope: no condition and no query for these roles
_DIALECT = asyncpg_dialect.dialect()
ORG: BindParameter[uuid.UUID] = bindparam("org_id")
USER: BindParameter[uuid.UUID] = bindparam("user_id")
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
        # what SQLAlchemy does to a value before binding it (an array's items); none for the other types here
        self.bind_processors: dict[str, Callable[[Any], Any]] = {}
        for name, convert in compiled._bind_processors.items():
            if not callable(convert):  # a tuple's per-item processors: no statement here binds one
                raise TypeError(f"{name}: a tuple parameter")
            self.bind_processors[name] = convert
        self.compiled = compiled
        self.sql = compiled.string
        self.parameters = list(compiled.positiontup or ())
        self.defaults = dict(compiled.params)  # values the statement carries itself, beside the named parameters
        # a list bound as IN (...) or a search pattern written into the SQL: rendered for each request's values
        self.expands = bool(compiled.post_compile_params or compiled.literal_execute_params)
        self.types = {column.key: column.type.dialect_impl(_DIALECT) for column in statement.selected_columns}
        # asyncpg gives a text array as a list already: SQLAlchemy's processor would only copy it
        self.as_given = {key for key, type_ in self.types.items() if _is_text_array(type_)}
        self.processors: dict[str, Callable[[Any], Any]] | None = None

    async def fetch(self, connection: Any, values: dict[str, Any]) -> list[Any]:
        bound = {**self.defaults, **values}
        for name, convert in self.bind_processors.items():
            bound[name] = convert(bound[name])
        if self.expands:
            state = self.compiled.construct_expanded_state(bound)
            sql, arguments = state.statement, [state.parameters[name] for name in state.positiontup or ()]
        else:
            sql, arguments = self.sql, [bound[name] for name in self.parameters]
        if self.processors is None:
            described = (await connection.prepare(sql)).get_attributes()
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
        records = await connection.fetch(sql, *arguments)
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
# an agent's reads (owners/scope.lead_scope): the organization's setting first, then the statement with the scope
AGENT_SCOPE = agent_scope(USER)
AGENT_PARTS = agent_scope_parts(USER)  # the list walks each set on its own index (queries._scope_branches)
SEES_ALL = CompiledRead(select(Organization.agents_see_all).where(Organization.id == ORG))
DETAIL_SCOPED = CompiledRead(lead_select(ORG).where(Lead.id == LEAD, AGENT_SCOPE))
IN_SCOPE = CompiledRead(select(Lead.id).where(Lead.id == LEAD, Lead.org_id == ORG, AGENT_SCOPE))


def by_name(
    name: str, value: Any, type_: Any = None, *, inline: bool = False, expanding: bool = False, array: bool = False
) -> Any:
    """queries.Bind for a statement compiled once per shape: every value a named parameter (a search pattern
    rendered into the SQL for each request, as the route writes it)."""
    return bindparam(name, type_=type_, expanding=expanding, literal_execute=inline)


# the list's statement for each shape of filters met so far: which conditions, how many search patterns, the
# sort, whether a cursor continues it (a few dozen in practice; emptied should a client make thousands)
_SHAPES: dict[tuple[Any, ...], CompiledRead] = {}
_MAX_SHAPES = 512
# a phone search's first statement, its contacts, by number of prefixes
_PHONES: dict[int, CompiledRead] = {}


def _list_read(f: LeadFilters, terms: list[Any], cursor: str | None, scoped: bool = False) -> CompiledRead:
    key = (filter_shape(terms), f.sort, cursor is not None, scoped)
    read = _SHAPES.get(key)
    if read is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        scope = AGENT_PARTS if scoped else None
        statement = list_statement(ORG, f, DEFAULT_PAGE, cursor, scope, terms=terms, bind=by_name)
        read = _SHAPES[key] = CompiledRead(statement)
    return read


def _phone_read(prefixes: int) -> CompiledRead:
    read = _PHONES.get(prefixes)
    if read is None:
        statement = phone_contacts(ORG, "", patterns=["%"] * prefixes, bind=by_name)
        assert statement is not None
        read = _PHONES[prefixes] = CompiledRead(statement.limit(PHONE_CANDIDATES + 1))
    return read


# the timeline's statement for each shape: with or without a `type` filter, with or without a cursor
TYPES: BindParameter[Any] = bindparam("types", expanding=True)
AFTER = (bindparam("after_at", type_=LeadEvent.occurred_at.type), bindparam("after_id", type_=LeadEvent.id.type))
TIMELINES = {
    (typed, paged): CompiledRead(
        timeline.events_query(ORG, LEAD, TYPES if typed else [], AFTER if paged else None, 0).limit(ROWS)
    )
    for typed in (False, True)
    for paged in (False, True)
}
LEAD_EXISTS = CompiledRead(timeline.lead_exists_query(ORG, LEAD))


class LeadRoute:
    """What the access log and the request histogram read from `scope["route"]`."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name


LIST_ROUTE = LeadRoute("/v1/leads", "list_leads")
DETAIL_ROUTE = LeadRoute("/v1/leads/{lead_id}", "get_lead")
TIMELINE_ROUTE = LeadRoute("/v1/leads/{lead_id}/timeline", "get_timeline")


async def _scoped(connection: Any, values: dict[str, Any]) -> bool:
    """Whether the caller's reads carry the agent scope: an agent's key, unless the organization lets agents
    see everything (read with each request, as the route does: a changed setting applies at once)."""
    if values.get("user_id") is None:
        return False
    sees_all = await SEES_ALL.fetch(connection, values)
    return not (sees_all and sees_all[0]["agents_see_all"])


async def detail(connection: Any, values: dict[str, Any]) -> Response | None:
    rows = await (DETAIL_SCOPED if await _scoped(connection, values) else DETAIL).fetch(connection, values)
    if not rows:
        return None
    return json_out.json_response(json_out.lead_dict(rows[0]), headers={"ETag": etag(rows[0]["version"])})


async def list_page(connection: Any, values: dict[str, Any]) -> Response | None:
    """As service.list_lead_rows: a phone search's contacts first (when few), then the page of the filters'
    shape, its values as parameters."""
    f: LeadFilters = values["filters"]
    scoped = await _scoped(connection, values)
    if f.q and f.contact_ids is None:
        patterns = phone_prefix_patterns(f.q)
        if patterns is not None:
            found = await _phone_read(len(patterns)).fetch(
                connection, {"org_id": values["org_id"], **term_values([("phone", patterns)])}
            )
            contact_ids = few_contacts(row["contact_id"] for row in found)
            if contact_ids is not None:
                f = replace(f, contact_ids=contact_ids)
    terms = filter_terms(f)
    parameters = {
        "org_id": values["org_id"],
        "user_id": values.get("user_id"),
        "rows": values["rows"],
        **term_values(terms),
        **values["after"],
    }
    rows = await _list_read(f, terms, values["cursor"], scoped).fetch(connection, parameters)
    limit = values["rows"] - 1
    next_cursor = next_cursor_for(rows[limit - 1], f.sort) if len(rows) > limit else None
    return json_out.page(map(json_out.lead_dict, rows[:limit]), next_cursor)


async def timeline_page(connection: Any, values: dict[str, Any]) -> Response | DomainError | None:
    if await _scoped(connection, values) and not await IN_SCOPE.fetch(connection, values):
        return None  # outside an agent's scope is a 404, as for another organization's lead
    if values.get("cursor_error") is not None:
        return values["cursor_error"]  # the route's order: the scope's 404 first, then the cursor's 422
    read = TIMELINES[(bool(values["types"]), values["after"] is not None)]
    after = values["after"] or (None, None)
    rows = await read.fetch(connection, {**values, "after_at": after[0], "after_id": after[1]})
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
        principal = await _principal(scope) if target is not None else None
        if target is None or principal is None or (principal.role not in _UNSCOPED and principal.user_id is None):
            await self.app(scope, receive, send)  # an agent key of nobody: the route's false() scope
            return
        route, values = target
        scope["route"] = route
        state = scope["app"].state.guestcard
        answer = ANSWERS[route.name]
        values["org_id"] = principal.org_id
        if principal.role not in _UNSCOPED:
            values["user_id"] = principal.user_id
        rate = asyncio.ensure_future(rate_check(state, principal))
        try:
            try:
                if route is LIST_ROUTE:  # a cursor that is not one answers 422, outside the pooled work
                    values["after"] = cursor_values(values["filters"].sort, values["cursor"])
                elif route is TIMELINE_ROUTE:
                    try:
                        values["after"] = timeline.cursor_after(values["cursor"])
                    except DomainError as error:  # answered after the scope check, as the route orders them
                        values["after"], values["cursor_error"] = None, error
                # reads only: run once more on a fresh connection if the pooled one died (a restart)
                found = await on_pool(state.statement_pool, lambda connection: answer(connection, values))
            finally:
                await rate  # a 429 outranks the answer (and the handler's own error)
            if found is None:
                raise NotFound("Lead not found.")
            if isinstance(found, DomainError):
                raise found
            response = found
        except DomainError as error:
            response = domain_problem(error, scope["path"])
        except Exception as error:
            response = failure_problem(error)
        await response(scope, receive, send)


def _target(scope: Scope) -> tuple[LeadRoute, dict[str, Any]] | None:
    """(route, what it reads) when one of the routes would take this request with a valid id and a query
    string this layer reads exactly as the route would (`_list_request`, `_timeline_request`)."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if path == LIST_PATH:
        found = _list_request(scope.get("query_string", b""))
        if found is None:
            return None
        filters, limit, cursor = found
        return LIST_ROUTE, {"filters": filters, "cursor": cursor, "rows": limit + 1}
    if not path.startswith(PREFIX):
        return None
    text, _, rest = path[len(PREFIX) :].partition("/")
    route = DETAIL_ROUTE if not rest and not path.endswith("/") else TIMELINE_ROUTE if rest == "timeline" else None
    if route is None or len(text) != 36 or _UUID.fullmatch(text) is None:
        return None
    query = scope.get("query_string", b"")
    if route is DETAIL_ROUTE:
        return None if query else (route, {"lead_id": uuid.UUID(text)})
    asked = _timeline_request(query)
    if asked is None:
        return None
    types, size, cursor = asked
    return route, {"lead_id": uuid.UUID(text), "rows": size + 1, "types": types, "cursor": cursor}


# the list's query parameters this layer reads itself, each as the route's `lead_filters` would (an enum's
# values, a canonical UUID, `true`/`false`, the date ranges through the route's own parser); any other, a
# repeated single one, a blank or an odd value goes to the route, which reads or refuses it
_ENUMS = {
    "status": {s.value for s in LeadStatus},
    "temperature": {t.value for t in Temperature},
    "kind": {k.value for k in ContactKind},
    "sort": set(get_args(LeadSort)),
}
_BOOLEANS = {"true": True, "false": False}
_DATES = ("created_from", "created_to", "updated_from", "updated_to")
_DATE_TIME: TypeAdapter[datetime | None] = TypeAdapter(IsoDateTime | None)  # as lead_filters declares them
_Q_MAX = 200  # lead_filters' `q` max_length


_EVENT_TYPES = {t.value for t in EventType}


def _page_size(value: str | None, default: int) -> int | None:
    """A `limit` as the routes' `Query(ge=1, le=500)` reads it, when it is a plain number: else None (the
    route's to read, and perhaps refuse)."""
    if value is None:
        return default
    found = _LIMIT_VALUE.fullmatch(value)
    return None if found is None or int(value) > MAX_PAGE else int(value)


def _timeline_request(query: bytes) -> tuple[list[str], int, str | None] | None:
    """(types, page size, cursor) of a timeline query string (`type` repeatable, `limit`, `cursor`), or None: the
    route's to read."""
    if not query:
        return [], timeline.DEFAULT_LIMIT, None
    single: dict[str, str] = {}
    types: list[str] = []
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "type" and value in _EVENT_TYPES:
            types.append(value)
        elif name in ("limit", "cursor") and value and "\x00" not in value and name not in single:
            single[name] = value
        else:
            return None
    size = _page_size(single.get("limit"), timeline.DEFAULT_LIMIT)
    return None if size is None else (types, size, single.get("cursor"))


def _list_request(query: bytes) -> tuple[LeadFilters, int, str | None] | None:
    """(filters, page size, cursor) of a list query string, or None: the route's to read."""
    if not query:
        return LeadFilters(), DEFAULT_PAGE, None
    # as Starlette reads a query string (QueryParams)
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    single: dict[str, str] = {}
    statuses: list[str] = []
    for name, value in pairs:
        if not value or "\x00" in value:
            return None
        if name == "status":
            if value not in _ENUMS["status"]:
                return None
            statuses.append(value)
        elif name in single:
            return None
        else:
            single[name] = value
    limit = _page_size(single.pop("limit", None), DEFAULT_PAGE)
    if limit is None:
        return None
    cursor = single.pop("cursor", None)
    filters = LeadFilters(status=statuses or None)
    for name, value in single.items():
        if name in _ENUMS:
            if value not in _ENUMS[name]:
                return None
            setattr(filters, name, value)
        elif name == "property_id" and _UUID.fullmatch(value):
            filters.property_id = uuid.UUID(value)
        elif name == "owner_id" and (value == "none" or _UUID.fullmatch(value)):
            filters.unassigned = value == "none"
            filters.owner_id = None if filters.unassigned else uuid.UUID(value)
        elif name == "source":
            filters.source = value
        elif name == "has_next_action_overdue" and value in _BOOLEANS:
            filters.has_next_action_overdue = _BOOLEANS[value]
        elif name == "q" and len(value) <= _Q_MAX:
            filters.q = value
        elif name in _DATES:
            try:  # the route's own parser: the same instant, or the route's 422
                setattr(filters, name, _DATE_TIME.validate_python(value))
            except ValidationError:
                return None
        else:
            return None
    return filters, limit, cursor


PRINCIPAL = CompiledRead(principal_select(bindparam("key_hash")))


async def _principal(scope: Scope) -> Principal | None:
    """The caller, as deps.get_principal finds it: from the principal cache, or read once on the statement pool
    and kept there. None (the route answers) for no bearer key, an unknown or revoked one, or a failed read."""
    authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
            break
    scheme, token = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer" or not token:
        return None
    key_hash = hash_secret(token)
    pool = scope["app"].state.guestcard.statement_pool

    async def read() -> Principal | None:
        rows = await on_pool(pool, lambda connection: PRINCIPAL.fetch(connection, {"key_hash": key_hash}))
        return principal_of(rows[0]) if rows else None

    try:
        return await principal_cache.cache().get_or_read(key_hash, read)
    except Exception:  # the database away: the route reads the key again and answers with its own problem
        return None
