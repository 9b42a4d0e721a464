"""Prebuilt INSERTs for the rows the intake hot path writes (issue #16).

`insert(Model).values(**row)` rebuilds and re-keys the statement on every call: SQLAlchemy coerces each
value into a bound parameter and walks the result for its cache key. For a 25-column row that was ~0.4 ms
of CPU per statement, about a fifth of applying a signal. Built once here, with the values sent as execute
parameters, the statement is compiled once and cached; measured 0.61 → 0.24 ms per insert.

`attach` makes the row just written a persistent ORM object without reading it back, for callers that go on
to use it (serialize it, add an event about it).
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from sqlalchemy import Table, inspect
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from shared.models.base import Base

M = TypeVar("M", bound=Base)
_KEEP = "rows.attached"


@functools.cache
def insert_statement(table: Table, conflict: tuple[str, ...] | None = None, returning: str | None = None) -> Insert:
    """INSERT into `table` [ON CONFLICT (conflict) DO NOTHING] [RETURNING returning], values at execute time."""
    statement = insert(table)
    if conflict is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
    if returning is not None:
        return statement.returning(table.c[returning])  # type: ignore[return-value]
    return statement


_SERVER = object()  # the database computes it (a server default, no Python one): left out of the row


@functools.cache
def _defaults(table: Table) -> tuple[tuple[str, Any], ...]:
    """Each column's Python-side default (None where it has none): a full row keeps one compiled statement."""
    found: list[tuple[str, Any]] = []
    for column in table.columns:
        default = column.default
        if getattr(default, "is_scalar", False) or getattr(default, "is_callable", False):
            found.append((column.key, default))
        else:
            found.append((column.key, _SERVER if column.server_default is not None else None))
    return tuple(found)


def full_row(model: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    """Every column of `model`: the value given, else the column's Python default, else None. A column only
    the database fills (a server default) is left out: the INSERT lets it apply, and an attached object
    loads it when read, as it would after any INSERT."""
    row = {}
    for key, default in _defaults(model.__table__):  # type: ignore[arg-type]
        if key in values:
            row[key] = values[key]
        elif default is None:
            row[key] = None
        elif default is _SERVER:
            continue
        elif default.is_callable:
            row[key] = default.arg(None)  # SQLAlchemy wraps a no-argument callable to take the context
        else:
            row[key] = default.arg
    return row


def attach(session: AsyncSession, model: type[M], row: dict[str, Any]) -> M:
    """The row just inserted, as a persistent object in the session's identity map (no SELECT, no UPDATE)."""
    instance = model(**row)
    make_transient_to_detached(instance)  # what the row left out is marked expired: a read would refresh it
    state = inspect(instance)
    state.expired_attributes.difference_update(_deferred(model))  # deferred ones load when read, as usual
    session.add(instance)
    # the identity map holds unmodified objects weakly: keep this one for the session's life (a request or
    # a job), or it is collected before the next reader looks for it
    session.info.setdefault(_KEEP, []).append(instance)
    return instance


@functools.cache
def _deferred(model: type[Base]) -> frozenset[str]:
    return frozenset(prop.key for prop in inspect(model).column_attrs if prop.deferred)


def is_pending(row: Base) -> bool:
    """Whether `row` waits in its session for the flush to write it (`row in session.new`, in O(1)).

    `session.new` builds a set of every pending object on each call; in an intake batch, which flushes once for
    all its signals, that set holds hundreds of rows, and the owner and rule checks asked it per signal."""
    return bool(inspect(row).pending)
