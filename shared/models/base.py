"""Declarative base with the conventions every table shares: uuid ids, org_id, UTC timestamps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, ForeignKeyConstraint, MetaData, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from shared import clock

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return clock.now()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True), uuid.UUID: UUID(as_uuid=True)}

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        """A row's ORM identity is its `id` alone (a uuid or a sequence, unique across organizations), while the
        table's primary key is (id, org_id) so that the schema distributes by organization (migration o20k)."""
        table: Any = cls.__table__
        return {"primary_key": [table.c.id]} if "id" in table.primary_key.columns else {}


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class OrgMixin:
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class OrgLedMixin:
    """org_id without an index of its own: the table's composite indexes lead with it and serve every lookup
    by organization (and the cascade), so the hot tables write one index entry less per row (migration x16i)."""

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


def scope_references_by_organization(metadata: MetaData) -> None:
    """Every reference to a per-organization table becomes (x_id, org_id) → (id, org_id) (migration o20k).

    Models declare a reference as usual, `ForeignKey("leads.id")`; this rewrites each one once all models are
    loaded (shared/models/__init__.py), so no model can forget the rule: a row cannot point at another
    organization's row, and every reference stays inside one organization's shard when the schema is
    distributed by org_id. `SET NULL` clears the reference only (`SET NULL (x_id)`, PostgreSQL 15+): org_id is
    part of the row's own key."""
    for table in metadata.tables.values():
        if "org_id" not in table.c:
            continue
        for constraint in list(table.foreign_key_constraints):
            target = constraint.referred_table
            if target.name == "organizations" or len(constraint.columns) != 1 or "org_id" not in target.c:
                continue
            (column,) = constraint.columns
            (element,) = constraint.elements
            table.constraints.discard(constraint)
            table.foreign_keys.discard(element)
            column.foreign_keys.discard(element)
            on_delete = f"SET NULL ({column.name})" if constraint.ondelete == "SET NULL" else constraint.ondelete
            table.append_constraint(
                ForeignKeyConstraint(
                    [column.name, "org_id"],
                    [target.c.id, target.c.org_id],
                    ondelete=on_delete,
                    deferrable=constraint.deferrable,
                    initially=constraint.initially,
                )
            )
