"""guestcard's own SQLAlchemy statements rendered for raw asyncpg: the floor runs the very same SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

DIALECT = asyncpg_dialect.dialect()


def raw(statement: Any) -> tuple[str, list[Any]]:
    """SQL text with $n placeholders and its arguments, as SQLAlchemy would send them to asyncpg."""
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    return compiled.string, [params[name] for name in compiled.positiontup or []]
