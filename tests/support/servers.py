"""The project's own servers for tests and benchmarks (the `test` instance of deploy/),
and databases of one's own on them."""

import os
import subprocess
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = "postgresql://campaigns:campaigns@127.0.0.1:15433/campaigns"
KAFKA_BOOTSTRAP = "127.0.0.1:19093"


def start_local(script: str) -> None:
    """deploy/postgres.sh or deploy/kafka.sh, as the `test` instance: idempotent."""
    subprocess.run([str(ROOT / "deploy" / script), "start"], check=True, env={**os.environ, "INSTANCE": "test"})


async def create_database(admin_url: str, prefix: str = "t") -> str:
    """A new, empty database beside the one of `admin_url`; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{admin_url.rpartition('/')[0]}/{name}"


async def drop_database(admin_url: str, url: str) -> None:
    """Drops it, ending its sessions. An autovacuum worker in it cannot be ended by us (it
    is the superuser's) but finishes soon: tried again until it has."""
    from tests.support.polling import eventually

    connection = await asyncpg.connect(admin_url)

    async def dropped() -> bool:
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')
        except asyncpg.InsufficientPrivilegeError:
            return False
        return True

    try:
        await eventually(dropped, "the test database dropped", timeout=60, every=0.2)
    finally:
        await connection.close()
