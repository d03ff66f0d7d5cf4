"""The asyncpg pool and the migration runner.

Each service owns one schema. Its migrations are plain numbered `.sql` files, applied in
order once each, inside one transaction per file, under an advisory lock so that two
instances starting together do not race. Files run with `search_path` set to the schema,
so they name no schema themselves.
"""

import json
from pathlib import Path

import asyncpg
import orjson
import structlog

log = structlog.get_logger()

SHARED_SQL = Path(__file__).parent / "sql"


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    # jsonb in its binary form (a version byte, then the text), so that COPY, which is
    # binary, can carry it too.
    await connection.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog", format="binary"
    )


def _jsonb_encode(value) -> bytes:
    return b"\x01" + orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _jsonb_decode(data: bytes):
    return orjson.loads(data[1:])  # a tenth of json's time: imports and evaluations read millions


async def create_pool(database_url: str, schema: str, size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=size,
        init=_init_connection,
        server_settings={"search_path": f"{schema},public"},
    )


def migration_files(*directories: Path) -> list[Path]:
    files = [path for directory in directories for path in directory.glob("*.sql")]
    return sorted(files, key=lambda path: path.name)


async def migrate(database_url: str, schema: str, *directories: Path) -> list[str]:
    """Applies what is new; returns the names of the files applied."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrate:{schema}")
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await connection.execute(f'SET search_path TO "{schema}", public')
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await connection.fetch("SELECT name FROM schema_migrations")}
        applied = []
        for path in migration_files(*directories):
            if path.name in done:
                continue
            async with connection.transaction():
                await connection.execute(path.read_text())
                await connection.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied.append(path.name)
            log.info("migration_applied", schema=schema, migration=path.name)
        return applied
    finally:
        await connection.close()


async def keyset_page(pool: asyncpg.Pool, select: str, after: tuple | None, limit: int, *args) -> list[asyncpg.Record]:
    """One page of `select` (which ends in a WHERE clause over `args` as $1..$n) in
    (created_at, id) order, after the cursor `after`: stable however the table grows."""
    n = len(args)
    stamp, ident = after if after else (None, None)
    return await pool.fetch(
        f"{select} AND (${n + 1}::timestamptz IS NULL OR (created_at, id) > (${n + 1}, ${n + 2}::uuid))"
        f" ORDER BY created_at, id LIMIT ${n + 3}",
        *args, stamp, ident, limit,
    )
