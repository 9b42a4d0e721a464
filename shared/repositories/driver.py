"""A hot statement sent straight to the transaction's asyncpg connection (issue #16).

Through `session.execute(text(...))` a statement pays for SQLAlchemy's compiled-cache lookup, an execution
context, re-binding the named parameters, the cursor adapter and the result wrapper: a `SELECT 1` cost
~170 µs of CPU that way and ~35 µs on asyncpg itself (in process, 300 each). The batch apply sends one
text statement per new renter (the contact and its identities), so that one goes through here: compiled
once, then run with asyncpg's `fetch` on the connection the session's transaction already holds. Same
connection, same transaction, same snapshot; asyncpg's errors are the ones `shared.outage` reads.

When the session has not begun its transaction on the server yet (SQLAlchemy sends BEGIN lazily, with the
first statement), the statement goes through SQLAlchemy instead, which begins it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Connection, Table, TextClause, insert, text
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.util import await_only

# tests count these beside SQLAlchemy's own statements (tests/signals/test_statement_budget.py)
OBSERVERS: list[Callable[[str], None]] = []

_DIALECT = asyncpg_dialect.dialect()


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A `text()` statement compiled once: asyncpg's SQL ($1 … $n) and the parameter names in that order."""

    statement: TextClause
    sql: str
    names: tuple[str, ...]

    @classmethod
    def of(cls, statement: TextClause) -> DriverStatement:
        compiled = statement.compile(dialect=_DIALECT)
        return cls(statement, str(compiled), tuple(compiled.positiontup or ()))


async def _in_transaction(session: AsyncSession) -> Any:
    """The asyncpg connection holding the session's transaction, or None while SQLAlchemy has not sent BEGIN
    yet (then the caller goes through SQLAlchemy, which begins it)."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    return driver if driver is not None and driver.is_in_transaction() else None


async def fetch(session: AsyncSession, statement: DriverStatement, params: Mapping[str, Any]) -> Sequence[Any]:
    """The statement's rows (attribute access by column name, as SQLAlchemy's rows)."""
    driver = await _in_transaction(session)
    if driver is None:
        return (await session.execute(statement.statement, dict(params))).all()
    for observe in OBSERVERS:
        observe(statement.sql)
    return [_Row(record) for record in await driver.fetch(statement.sql, *[params[name] for name in statement.names])]


@functools.cache
def _unnest_insert(table: Table, columns: tuple[str, ...]) -> str:
    """INSERT … SELECT from one array per column: one statement, one plan, whatever the row count. An array
    column would be flattened by `unnest`, so a table with one is refused."""
    if any(isinstance(table.c[name].type, ARRAY) for name in columns):
        raise TypeError(f"{table.name}: unnest would flatten an array column")
    arrays = ", ".join(
        f"${index}::{table.c[name].type.compile(dialect=_DIALECT)}[]" for index, name in enumerate(columns, 1)
    )
    return f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"  # noqa: S608 (table and column names from the models)


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Write `rows` (each with the same keys) into `table` with one `INSERT … SELECT FROM unnest(…)`.

    An executemany runs the INSERT once per row, and a statement trigger (the timeline's rollup trigger, b26e)
    fires once per row with it: a batch of 50 new renters' 250 timeline entries took ~30 ms that way against
    7-9 ms here (in process, the machine's PostgreSQL 15). False when the session's transaction has not begun
    on the server: the caller writes the rows through SQLAlchemy instead."""
    driver = await _in_transaction(session)
    if driver is None:
        return False
    sql, arrays = _unnest_arguments(table, rows, (await session.connection()).dialect)
    await driver.execute(sql, *arrays)
    return True


def insert_rows_in_flush(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """`insert_rows` for a flush hook: synchronous code that SQLAlchemy's asyncio bridge runs in its greenlet,
    where `await_only` waits for the driver as SQLAlchemy's own adapter does. Before the transaction has begun
    on the server, an executemany through SQLAlchemy (which begins it)."""
    driver = connection.connection.driver_connection
    if driver is None or not driver.is_in_transaction():
        connection.execute(insert(table), list(rows))
        return
    sql, arrays = _unnest_arguments(table, rows, connection.dialect)
    await_only(driver.execute(sql, *arrays))


@functools.cache
def _unnest_update(table: Table, key: str, columns: tuple[str, ...], condition: str = "") -> tuple[str, TextClause]:
    """UPDATE … FROM one array per column, joined on `key`: one statement, one plan, whatever the row count. In
    asyncpg's form, and as a `text()` for a transaction SQLAlchemy has yet to begin (it sends BEGIN first)."""
    if any(isinstance(table.c[name].type, ARRAY) for name in columns):
        raise TypeError(f"{table.name}: unnest would flatten an array column")
    types = [f"{table.c[name].type.compile(dialect=_DIALECT)}[]" for name in columns]
    assigned = ", ".join(f"{name} = v.{name}" for name in columns if name != key)
    where = f" WHERE t.{key} = v.{key}{f' AND {condition}' if condition else ''}"

    def sql(arrays: str) -> str:
        return f"UPDATE {table.name} AS t SET {assigned} FROM unnest({arrays}) AS v({', '.join(columns)}){where}"  # noqa: S608 (table and column names from the models)

    positional = sql(", ".join(f"${index}::{type_}" for index, type_ in enumerate(types, 1)))
    named = sql(", ".join(f"CAST(:a{index} AS {type_})" for index, type_ in enumerate(types, 1)))
    return positional, text(named)


async def update_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]], key: str = "id", condition: str = ""
) -> None:
    """Set each row's columns (each row with the same keys, `key` among them) with one `UPDATE … FROM unnest(…)`;
    `condition`: the code's own SQL on the table's row as `t` that a row must also meet (never user input).

    An executemany runs the UPDATE once per row, each with its own executor start (the send job's two writes of
    every message, the intake's outcome of every delivery went that way)."""
    if not rows:
        return
    columns = tuple(rows[0])
    positional, named = _unnest_update(table, key, columns, condition)
    arrays = _arrays(table, rows, columns, (await session.connection()).dialect)
    for observe in OBSERVERS:
        observe(positional)
    driver = await _in_transaction(session)
    if driver is None:
        await session.execute(named, {f"a{index}": values for index, values in enumerate(arrays, 1)})
    else:
        await driver.execute(positional, *arrays)


def _unnest_arguments(table: Table, rows: Sequence[Mapping[str, Any]], dialect: Any) -> tuple[str, list[list[Any]]]:
    """The set insert's SQL and its arrays; the observers hear the SQL."""
    columns = tuple(rows[0])
    sql = _unnest_insert(table, columns)
    arrays = _arrays(table, rows, columns, dialect)
    for observe in OBSERVERS:
        observe(sql)
    return sql, arrays


def _arrays(table: Table, rows: Sequence[Mapping[str, Any]], columns: tuple[str, ...], dialect: Any) -> list[list[Any]]:
    """One array per column, each value through its column's bind processor (what SQLAlchemy sends for it: a JSON
    column's None is JSON null)."""
    arrays = []
    for name in columns:
        process = table.c[name].type._cached_bind_processor(dialect)
        values = [row[name] for row in rows]
        if process is not None:
            values = [process(value) for value in values]
        arrays.append(values)
    return arrays


class _Row:
    """An asyncpg record read by attribute, as callers read SQLAlchemy's rows."""

    __slots__ = ("_record",)

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None
