"""A small numbered-SQL migrator for the audit schema.

`hulk_ops/actions/migrations/NNN_name.sql` files are applied in order, each once, inside one transaction that
holds an advisory lock (two processes starting together do not both migrate). Applied versions are
recorded in `<schema>.schema_migrations`. Objects in the files are unqualified: the schema is the
search_path of the transaction.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

MIGRATIONS = Path(__file__).with_name("migrations")
FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def migrations(directory: Path = MIGRATIONS) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration file, in order."""
    found = []
    for path in sorted(directory.iterdir()):
        match = FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration versions in {directory}")
    return found


async def migrate(conn: psycopg.AsyncConnection[Any], schema: str, directory: Path = MIGRATIONS) -> list[int]:
    """Bring `schema` up to date; return the versions applied now (empty: already current)."""
    applied_now: list[int] = []
    ident = sql.Identifier(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"hulk-ops-migrate:{schema}"])
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
        for version, name, text in migrations(directory):
            if version in done:
                continue
            await conn.execute(text.encode())
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", [version, name])
            applied_now.append(version)
    return applied_now
