"""CSV export of the lead list: same filters and order, streamed by PostgreSQL's own `COPY … TO STDOUT CSV`.

The list's statement (`export_query`, built on `lead_select`/`apply_filters`/`apply_order`) keeps its FROM,
WHERE and ORDER BY; only its columns are swapped for their CSV text, formatted in SQL (`export_copy_query`):
timestamps ISO 8601 in UTC with `Z` (microseconds only when non-zero, like `datetime.isoformat`), dates ISO,
booleans `true`/`false`, NULL and '' as an empty unquoted cell, and free text a spreadsheet would run as a
formula (first character = + - @ tab CR) prefixed with `'` (CSV injection). PostgreSQL quotes like Python's
`csv.QUOTE_MINIMAL`; its record separator `\\n` becomes `\\r\\n` here (the `csv` module's), newlines inside
quoted cells are left alone.

The body is produced after the request's transaction has ended, so the generator checks out its own
connection and runs the COPY on the asyncpg connection under it. Chunks go through a bounded queue: when the
client reads slowly the COPY waits (asyncpg stops reading the socket while the sink awaits), so memory is
flat in the number of rows. If the stream stops early (client gone), the COPY is cancelled and the connection
invalidated rather than returned to the pool mid-COPY; every path gives the connection back.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Select, String, Text, case, cast, func, literal, literal_column
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import replacement_traverse
from starlette.responses import StreamingResponse
from starlette.types import Send

from services.api.leads.queries import LeadFilters, apply_filters, apply_order, lead_select
from shared.models import Lead, Property, User

COLUMNS = [
    "id",
    "contact_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "kind",
    "property_id",
    "property_name",
    "status",
    "status_label",
    "temperature",
    "source",
    "sub_source",
    "latest_source",
    "owner_id",
    "owner_name",
    "owner_email",
    "move_in_date",
    "move_in_text",
    "bedrooms",
    "bathrooms",
    "budget_min",
    "budget_max",
    "pets",
    "pets_text",
    "unit_type",
    "created_at",
    "updated_at",
    "first_response_at",
    "first_response_seconds",
    "last_touch_at",
    "next_action_type",
    "next_action_due_at",
    "lost_reason",
]
# free text a spreadsheet would run as a formula (CSV injection); system-normalized values are left alone
_TEXT = {"first_name", "last_name", "property_name", "status_label", "source", "sub_source", "latest_source"}
_TEXT |= {"owner_name", "move_in_text", "pets_text", "unit_type"}
FORMULA_FIRST = ("=", "+", "-", "@", "\t", "\r")
_PLACEHOLDER = re.compile(r"\$(\d+)\b")  # what asyncpg replaces with an argument (utils._mogrify)
QUEUE_CHUNKS = 8  # asyncpg hands over what one socket read holds (≤ ~64 KiB): a few hundred KiB in flight


def export_query(org_id: uuid.UUID, filters: LeadFilters, scope: ColumnElement[bool] | None = None) -> Select[Any]:
    """The export's rows as the list sees them (typed values); the bench's COPY floor runs this one."""
    query = (
        lead_select(org_id)
        .add_columns(Property.name.label("property_name"), User.name.label("owner_name"))
        .add_columns(User.email.label("owner_email"))
        .outerjoin(Property, Property.id == Lead.property_id)
        .outerjoin(User, User.id == Lead.owner_id)
    )
    if scope is not None:  # owners' scope: an agent exports only what it may see
        query = query.where(scope)
    return apply_order(apply_filters(query, org_id, filters), filters.sort, None)


def _sql_text(value: str) -> ColumnElement[str]:
    """A constant of ours as SQL text (E'' so tab and CR are spelled as escapes)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t").replace("\r", "\\r")
    return literal_column(f"E'{escaped}'", Text)


def _cell_sql(key: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The CSV text of one column, as `_cell` of the row-by-row export wrote it; NULL means empty."""
    kind = column.type
    if isinstance(kind, DateTime):
        at = func.timezone(_sql_text("UTC"), column) if kind.timezone else column
        iso = func.to_char(at, _sql_text('YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), type_=Text)
        return func.replace(iso, _sql_text(".000000Z"), _sql_text("Z"), type_=Text)
    if isinstance(kind, Date):
        return func.to_char(column, _sql_text("YYYY-MM-DD"), type_=Text)
    if isinstance(kind, Boolean):
        return cast(column, Text)  # the cast says true/false; COPY's own output would say t/f
    if isinstance(kind, String):
        text = func.nullif(column, _sql_text(""), type_=Text)  # COPY quotes '' ("") but not NULL
        if key not in _TEXT:
            return text
        formula = func.left(column, literal_column("1")).in_([_sql_text(c) for c in FORMULA_FIRST])
        return case((formula, _sql_text("'").op("||", return_type=Text)(column)), else_=text)
    return column  # uuid, integer, numeric(3,1): PostgreSQL's text is Python's str()


def export_copy_query(org_id: uuid.UUID, filters: LeadFilters, scope: ColumnElement[bool] | None = None) -> Select[Any]:
    """`export_query` with each column replaced by its CSV text: same FROM, WHERE and ORDER BY."""
    query = export_query(org_id, filters, scope)
    selected = query.selected_columns
    cells = [_cell_sql(key, selected[key]).label(key) for key in COLUMNS]
    return query.with_only_columns(*cells, maintain_column_froms=False)


def _as_parameters(query: Select[Any]) -> Select[Any]:
    """Every value as a `$n` parameter, including those the list renders into its SQL (`literal_execute`).

    asyncpg inlines COPY's arguments itself: it asks the server for each value's quoted literal, then
    replaces every `$n` of the statement's text, string literals included. A user's text already inlined
    there (a search for "$1") would be rewritten into SQL, so none may be: they all travel as arguments,
    and the planner still sees each as a literal (the search's reason for inlining them).
    """

    def replace(element: Any, **_: Any) -> Any:
        if isinstance(element, BindParameter) and element.literal_execute:
            return literal(element.value, element.type)
        return None

    replaced: Select[Any] = replacement_traverse(query, {}, replace)  # type: ignore[assignment]
    return replaced


def copy_statement(
    dialect: Dialect, org_id: uuid.UUID, filters: LeadFilters, scope: ColumnElement[bool] | None = None
) -> tuple[str, list[Any]]:
    """The SELECT for `COPY (…) TO STDOUT` in asyncpg's `$n` style, with its arguments in order.

    `dialect` must have met the server (a connection was opened): it decides how `ESCAPE '\\'` is spelled.
    """
    query = _as_parameters(export_copy_query(org_id, filters, scope))
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    processors = compiled._bind_processors  # none for asyncpg's uuid/str/datetime today; kept for new types
    args = []
    for name in compiled.positiontup or []:
        value, process = params[name], processors.get(name)
        args.append(process(value) if callable(process) and value is not None else value)
    if len(_PLACEHOLDER.findall(compiled.string)) != len(args):  # a `$n` that is not ours: refuse
        raise RuntimeError("the export statement holds a $n that is not one of its parameters")
    return compiled.string, args


def to_crlf(chunk: bytes, in_quotes: bool) -> tuple[bytes, bool]:
    """COPY's record separator `\\n` → `\\r\\n`; a `\\n` inside a quoted cell (odd count of `"` so far) stays.

    Returns the chunk and whether it ends inside a quoted cell (chunks split anywhere).
    """
    if not in_quotes and b'"' not in chunk:
        return bytes(chunk.replace(b"\n", b"\r\n")), False
    lines = chunk.split(b"\n")
    out = []
    for line in lines[:-1]:
        if line.count(b'"') & 1:
            in_quotes = not in_quotes
        out.append(line)
        out.append(b"\n" if in_quotes else b"\r\n")
    last = lines[-1]
    if last.count(b'"') & 1:
        in_quotes = not in_quotes
    out.append(last)
    return b"".join(out), in_quotes


async def stream_csv(
    engine: AsyncEngine, org_id: uuid.UUID, filters: LeadFilters, *, scope: ColumnElement[bool] | None = None
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_CHUNKS)

    async def sink(chunk: bytes) -> None:
        await queue.put(chunk)

    async with engine.connect() as connection:
        sql, args = copy_statement(connection.dialect, org_id, filters, scope)
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None

        async def copy() -> None:
            try:
                await driver.copy_from_query(sql, *args, output=sink, format="csv", header=True)
            except asyncio.CancelledError:
                raise  # the reader is gone: no end mark (the queue may be full)
            except BaseException:
                await queue.put(None)  # the reader stops and `await task` raises the error
                raise
            await queue.put(None)

        task = asyncio.create_task(copy())
        try:
            in_quotes = False
            while (chunk := await queue.get()) is not None:
                data, in_quotes = to_crlf(chunk, in_quotes)
                yield data
            await task  # a failed COPY raises here
        finally:
            if not task.done():  # the stream stopped early: stop the COPY
                task.cancel()
                await asyncio.wait([task])
                # asyncpg may still be cancelling the COPY on the server: don't pool that connection
                await connection.invalidate()
            if not task.cancelled():
                task.exception()  # retrieved (raised above when the stream was read to its end)


class CsvStreamingResponse(StreamingResponse):
    """A StreamingResponse that closes its generator when the stream stops early (client gone), so the
    export's connection is released at once rather than when the generator is garbage-collected."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()
