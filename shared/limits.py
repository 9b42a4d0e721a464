"""Fit values to the columns that store them: a renter's over-long text is cut, never refused.

One generic rule, read from the ORM columns themselves (so a migration that widens a column widens the
limit): text longer than a `String(n)` column is cut to n characters; a number outside what an Integer or
`Numeric(p, s)` column holds is dropped (None: a blank never overwrites a known value downstream). Callers
note which fields were cut; the raw payload, stored before anything is parsed, keeps everything.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import BigInteger, Integer, Numeric, SmallInteger, String, inspect
from sqlalchemy.sql.schema import Column

Model = TypeVar("Model", bound=BaseModel)

_INTEGER_BOUNDS = ((SmallInteger, 2**15 - 1), (BigInteger, 2**63 - 1), (Integer, 2**31 - 1))


@functools.cache
def columns_of(entity: Any) -> Mapping[str, Column[Any]]:
    """The columns of an ORM class by attribute name (read once per class: every intake signal fits to them)."""
    return {attribute.key: attribute.columns[0] for attribute in inspect(entity).column_attrs}


def fit_value(column: Column[Any], value: Any) -> tuple[Any, bool]:
    """(the value as the column can store it, whether it had to change)."""
    kind = column.type
    if isinstance(value, str):
        length = getattr(kind, "length", None) if isinstance(kind, String) else None
        if length and len(value) > length:
            return value[:length], True
        return value, False
    if isinstance(value, bool) or value is None:
        return value, False
    if isinstance(value, int) and isinstance(kind, Integer):
        bound = next(limit for base, limit in _INTEGER_BOUNDS if isinstance(kind, base))
        return (value, False) if -bound - 1 <= value <= bound else (None, True)
    if isinstance(value, int | float | Decimal) and isinstance(kind, Numeric) and kind.precision:
        ceiling = Decimal(10) ** (kind.precision - (kind.scale or 0))
        return (value, False) if abs(Decimal(str(value))) < ceiling else (None, True)
    return value, False


def fit_model(model: Model, entity: Any, prefix: str = "") -> tuple[Model, list[str]]:
    """Fit every field of a pydantic model that has a same-named column on `entity`; name what changed."""
    columns = columns_of(entity)
    updates: dict[str, Any] = {}
    for name in type(model).model_fields:
        column = columns.get(name)
        if column is None:
            continue
        fitted, changed = fit_value(column, getattr(model, name))
        if changed:
            updates[name] = fitted
    if not updates:
        return model, []
    return model.model_copy(update=updates), [prefix + name for name in updates]
