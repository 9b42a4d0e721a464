"""Organization configuration kept across intake batches while the organization's `config_version` stays the same.

At moderate rates the intake drain finds two or three signals at a time, and each batch read the organization's
configuration again: assignment settings, owner pool, timezone, rule book, fallback owner, watchers and their
preferences, messaging settings, templates, the blocklist: ~11 of a batch's ~31 statements (issue #16). A batch now
reads one number per organization first (`read_versions`); what it then reads of that configuration is kept here
under that number, and the next batch that finds the same number takes it from here instead.

Why this is right: PostgreSQL gives the organization a new number in the same transaction as any change to those
tables (migration q22c's triggers), so a batch that reads number N and then finds values kept under N sees exactly
what it would have read. Values are kept under the number read *before* them, so a value is never older than its
number (a change committed in between makes it newer, which is what a read would have found too). Numbers come
from one sequence and are never reused. An intake batch writes none of these tables (tests/signals/
test_config_cache.py asserts it), so nothing it reads reflects its own uncommitted writes.

Only intake batches use it (`txmemo.remember_config`); any other request reads the database, so a request that
edits configuration and acts on it reads what it wrote. Kept values are shared by concurrent batches: they are
plain values or ORM rows copied off their session (`detached_copy`), and nobody changes them.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

# every table an intake batch reads as configuration; migration q22c puts the version triggers on each
CONFIG_TABLES = (
    "organizations",
    "users",
    "properties",
    "property_team_members",
    "assignment_settings",
    "automation_rule_sets",
    "message_templates",
    "messaging_settings",
    "notification_preferences",
    "blocklist_entries",
)
MAX_ORGS = 512  # organizations kept, least recently used first out
MAX_VALUES = 1024  # values kept per organization (watcher sets, templates…): past it the organization starts over

VERSIONS_SQL = text("SELECT id, config_version FROM organizations WHERE id = ANY(CAST(:ids AS uuid[]))")


@dataclass
class _Kept:
    version: int
    values: dict[Hashable, Any] = field(default_factory=dict)


class ConfigCache:
    """Per organization: one version and what was read under it."""

    def __init__(self, max_orgs: int = MAX_ORGS, max_values: int = MAX_VALUES) -> None:
        self._orgs: OrderedDict[uuid.UUID, _Kept] = OrderedDict()
        self.max_orgs = max_orgs
        self.max_values = max_values

    def get(self, org_id: uuid.UUID, version: int, key: Hashable) -> tuple[bool, Any]:
        kept = self._orgs.get(org_id)
        if kept is None or kept.version != version or key not in kept.values:
            return False, None
        self._orgs.move_to_end(org_id)
        return True, kept.values[key]

    def put(self, org_id: uuid.UUID, version: int, key: Hashable, value: Any) -> None:
        kept = self._orgs.get(org_id)
        if kept is not None and kept.version > version:
            return  # a batch that started later already keeps newer values
        if kept is None or kept.version < version or len(kept.values) >= self.max_values:
            kept = self._orgs[org_id] = _Kept(version)
        kept.values[key] = value
        self._orgs.move_to_end(org_id)
        while len(self._orgs) > self.max_orgs:
            self._orgs.popitem(last=False)


CACHE = ConfigCache()


async def read_versions(session: AsyncSession, org_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The organizations' configuration numbers, one statement."""
    rows = await session.execute(VERSIONS_SQL, {"ids": sorted(set(org_ids))})
    return {org_id: int(version) for org_id, version in rows}


def detached_copy(row: T) -> T:
    """A copy of an ORM row's loaded columns that belongs to no session: nothing expires it or loads into it, so
    batches running at the same time can share it. Read only."""
    state: Any = inspect(row)
    loaded = state.dict
    values = {attr.key: loaded[attr.key] for attr in state.mapper.column_attrs if attr.key in loaded}
    copy: T = state.mapper.class_(**values)
    return copy
