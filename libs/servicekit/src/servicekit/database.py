"""The asyncpg pool and the migration runner.

Each service owns one schema. Migrations are plain numbered `.sql` files of an owner (a
namespace: `outbox` for servicekit's tables, the schema's own for the service's), applied
owner by owner, in name order, once each, inside one transaction per file, under an
advisory lock so that two instances starting together do not race. Each applied file's
SHA-256 is recorded, and a file changed after it was applied stops the service at start.
Files run with `search_path` set to the schema, so they name no schema themselves.
"""

import hashlib
import json
from dataclasses import dataclass
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


async def _keep_session(connection: asyncpg.Connection) -> None:
    """A connection back in the pool as it is. asyncpg's default reset sends a query on
    every release (advisory unlock, CLOSE ALL, UNLISTEN *, RESET ALL): a round trip for
    each `pool.fetch` and unit of work. Nothing here leaves such session state behind
    (advisory locks are transaction-scoped, no SET, LISTEN or cursor outside a
    transaction), and asyncpg still rolls back a transaction left open before this runs."""


async def create_pool(database_url: str, schema: str, size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=size,
        init=_init_connection,
        reset=_keep_session,
        # The hot statements look up a few hundred rows by key in tables that are cached;
        # at the default random_page_cost (4, for spinning disks) the planner preferred
        # scanning and hashing whole tables of tens of thousands of rows for them.
        server_settings={"search_path": f"{schema},public", "random_page_cost": "1.1"},
    )


@dataclass(frozen=True)
class Migrations:
    """One owner's migrations: numbered `.sql` files in `directory`, applied in name order
    after those of the owners listed before it."""

    namespace: str
    directory: Path

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.sql"), key=lambda path: path.name)


# The outbox's tables, in every schema that has an outbox; applied before the service's.
SHARED_SQL = Migrations("outbox", Path(__file__).parent / "sql")
# What the outbox's files were called when every name began 0000_outbox and the file name
# alone was recorded: a schema migrated then is read as having applied the new names.
_RENAMED = {"0000_outbox.sql": "0001_outbox.sql", "0000_outbox_bundles.sql": "0002_bundles.sql",
            "0000_outbox_lz4.sql": "0003_lz4.sql", "0000_outbox_published_deleted.sql": "0004_published_deleted.sql",
            "0000_outbox_rejected.sql": "0005_rejected.sql"}


_NEW = object()  # a file schema_migrations has no row for


class MigrationEdited(RuntimeError):
    """An applied migration's file no longer says what it said when it was applied."""


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def migrate(database_url: str, schema: str, *sources: Migrations | Path) -> list[str]:
    """Applies what is new, owner by owner in the order given; returns the files applied
    as `namespace/name`. A bare directory is the schema's own. Refuses to start
    (MigrationEdited) when an applied file was changed since: a migration, once applied
    anywhere, is never edited; a new one is added."""
    owners = [source if isinstance(source, Migrations) else Migrations(schema, source) for source in sources]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrate:{schema}")
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await connection.execute(f'SET search_path TO "{schema}", public')
        await _ledger(connection, schema)
        done = {(row["namespace"], row["name"]): row["checksum"]
                for row in await connection.fetch("SELECT namespace, name, checksum FROM schema_migrations")}
        applied = []
        for owner in owners:
            for path in owner.files():
                key = (owner.namespace, path.name)
                recorded = done.get(key, _NEW)
                if recorded is _NEW:
                    async with connection.transaction():
                        await connection.execute(path.read_text())
                        await connection.execute(
                            "INSERT INTO schema_migrations (namespace, name, checksum) VALUES ($1, $2, $3)",
                            *key, checksum(path))
                    applied.append(f"{owner.namespace}/{path.name}")
                    log.info("migration_applied", schema=schema, namespace=owner.namespace, migration=path.name)
                elif recorded is None:  # recorded before checksums were: what is there now is taken as applied
                    await connection.execute("UPDATE schema_migrations SET checksum = $3 WHERE namespace = $1"
                                             " AND name = $2", *key, checksum(path))
                elif recorded != checksum(path):
                    raise MigrationEdited(
                        f"{path} was changed after it was applied to schema {schema}: restore it, and put the"
                        " change in a new migration")
        return applied
    finally:
        await connection.close()


async def _ledger(connection: asyncpg.Connection, schema: str) -> None:
    """schema_migrations with a namespace and a checksum per file, also for a schema
    migrated when it had neither (its rows are given their owner's namespace)."""
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " namespace text NOT NULL, name text NOT NULL, checksum text,"
        " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (namespace, name))"
    )
    if await connection.fetchval(
        "SELECT count(*) = 0 FROM information_schema.columns WHERE table_schema = $1"
        " AND table_name = 'schema_migrations' AND column_name = 'namespace'", schema,
    ):
        async with connection.transaction():
            await connection.execute(
                "ALTER TABLE schema_migrations ADD COLUMN namespace text, ADD COLUMN checksum text")
            for old, new in _RENAMED.items():
                await connection.execute("UPDATE schema_migrations SET namespace = 'outbox', name = $2 WHERE name = $1",
                                         old, new)
            await connection.execute("UPDATE schema_migrations SET namespace = $1 WHERE namespace IS NULL", schema)
            await connection.execute(
                "ALTER TABLE schema_migrations ALTER COLUMN namespace SET NOT NULL,"
                " DROP CONSTRAINT schema_migrations_pkey, ADD PRIMARY KEY (namespace, name)")


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
