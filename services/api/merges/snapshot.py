"""Exact before-images of rows, kept as JSON by PostgreSQL itself and restored with jsonb_populate_record.

Letting the database serialize (to_jsonb) and rebuild (jsonb_populate_record) its own rows means every type
(uuid, timestamptz to the microsecond, arrays, numeric, jsonb) round-trips without code that could drift.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause


async def snapshot_rows(
    session: AsyncSession, table: FromClause, column: str, values: list[Any]
) -> list[dict[str, Any]]:
    """Full rows of `table` whose `column` is in `values`, as JSON objects."""
    if not values:
        return []
    statement = text(f"SELECT to_jsonb(t) AS row FROM {_name(table)} AS t WHERE t.{column} = ANY(:values)").bindparams(  # noqa: S608 - table and column are ours
        bindparam("values", value=[str(value) for value in values])
    )
    rows = await session.execute(statement.columns())
    return [row.row if isinstance(row.row, dict) else json.loads(row.row) for row in rows]


async def restore_rows(session: AsyncSession, table: FromClause, rows: list[dict[str, Any]]) -> None:
    """Put every column of each row back exactly as it was (matched by primary key `id`)."""
    if not rows:
        return
    columns = [column.name for column in table.columns if column.name != "id"]
    assignments = ", ".join(columns)
    statement = text(
        f"UPDATE {_name(table)} AS t SET ({assignments}) = "  # noqa: S608 - identifiers come from our metadata
        f"(SELECT {assignments} FROM jsonb_populate_record(NULL::{_name(table)}, :row)) "
        f"WHERE t.id = (:row ->> 'id')::uuid"
    ).bindparams(bindparam("row", type_=JSONB))
    for row in rows:
        await session.execute(statement, {"row": row})


def _name(table: FromClause) -> str:
    name: str = getattr(table, "name")  # noqa: B009 - a Table; FromClause does not declare it
    return name
