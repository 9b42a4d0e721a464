"""The schema can be distributed by organization (Citus-style) without redesign: asserted from the live catalog.

Every table carries a NOT NULL `org_id` (the distribution column); every primary key and every unique key
includes it, so a uniqueness check never needs to look across organizations; and every reference to another
per-organization table is (x_id, org_id) → (id, org_id), so a join along a reference stays inside one
organization's shard (migration o20k). The exceptions are declared here and are global by nature: the
organizations table itself (a reference table) and the two credential hashes a request is routed by before
its organization is known. docs/architecture.md ("Beyond one PostgreSQL") has the rest of the path.
"""

from __future__ import annotations

import asyncpg

from tests.conftest import _asyncpg_dsn

NOT_PER_ORGANIZATION = {"alembic_version", "organizations"}
GLOBAL_UNIQUE_KEYS = {"uq_organizations_intake_key_hash", "uq_api_keys_key_hash", "organizations_pkey"}


async def _rows(servers: dict[str, str], sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(_asyncpg_dsn(servers["database_url"]))
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


async def test_every_table_carries_a_not_null_org_id(servers: dict[str, str]) -> None:
    rows = await _rows(
        servers,
        """
        SELECT c.relname, a.attnotnull
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        """,
    )
    assert len(rows) > 40  # the walk saw the schema
    missing = sorted(row["relname"] for row in rows if row["attnotnull"] is not True)
    assert missing == sorted(NOT_PER_ORGANIZATION)


async def test_every_unique_key_except_the_global_lookups_includes_org_id(servers: dict[str, str]) -> None:
    rows = await _rows(
        servers,
        """
        SELECT ic.relname AS index_name, c.relname AS table_name,
               EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attname = 'org_id'
                       AND a.attnum = ANY (i.indkey)) AS has_org
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND i.indisunique AND NOT i.indisprimary AND c.relname <> 'alembic_version'
        """,
    )
    assert len(rows) > 10
    without = {row["index_name"] for row in rows if not row["has_org"]}
    assert without <= GLOBAL_UNIQUE_KEYS, sorted(without - GLOBAL_UNIQUE_KEYS)


async def test_every_primary_key_includes_org_id(servers: dict[str, str]) -> None:
    rows = await _rows(
        servers,
        """
        SELECT c.relname,
               EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id'
                       AND a.attnum = ANY (con.conkey)) AS has_org
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
        WHERE c.relnamespace = 'public'::regnamespace AND con.contype = 'p'
        """,
    )
    assert len(rows) > 40
    without = sorted(row["relname"] for row in rows if not row["has_org"])
    assert without == sorted(NOT_PER_ORGANIZATION)


async def test_every_reference_between_organization_tables_carries_org_id_on_both_sides(
    servers: dict[str, str],
) -> None:
    rows = await _rows(
        servers,
        """
        SELECT con.conname, c.relname, t.relname AS target,
               (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) AS columns,
               (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) AS targets
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_class t ON t.oid = con.confrelid
        WHERE c.relnamespace = 'public'::regnamespace AND con.contype = 'f'
        """,
    )
    between = [row for row in rows if row["target"] not in NOT_PER_ORGANIZATION]
    assert len(between) > 50  # the walk saw the references (65 at migration o20k)
    unscoped = []
    for row in between:
        pairs = dict(zip(row["columns"], row["targets"], strict=True))
        if pairs.get("org_id") != "org_id":  # org_id must map onto the target's own org_id
            unscoped.append(f"{row['relname']}.{row['conname']}")
    assert unscoped == []
    # the organizations table is referenced by org_id alone: the reference table of a distributed schema
    to_organizations = {tuple(row["columns"]) for row in rows if row["target"] == "organizations"}
    assert to_organizations == {("org_id",)}
