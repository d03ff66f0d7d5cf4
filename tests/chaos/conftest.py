"""The fault suite's own PostgreSQL and Kafka (the `chaos` instance of deploy/, on ports
of its own below the ephemeral range), so that stopping them disturbs no other test."""

import asyncio
import os
import subprocess

import pytest

from tests.support.servers import ROOT

ENV = {"INSTANCE": "chaos", "PG_PORT": "15434", "KAFKA_PORT": "19094", "KAFKA_CONTROLLER_PORT": "19194"}
POSTGRES_URL = f"postgresql://campaigns:campaigns@127.0.0.1:{ENV['PG_PORT']}/campaigns"
KAFKA_BOOTSTRAP = f"127.0.0.1:{ENV['KAFKA_PORT']}"


class Server:
    """deploy/postgres.sh or deploy/kafka.sh of the chaos instance; each stops its server by
    the pid it keeps (pg_ctl's postmaster.pid, kafka.pid), never by a name."""

    def __init__(self, script: str) -> None:
        self._script = str(ROOT / "deploy" / script)

    def _run(self, action: str) -> None:
        subprocess.run([self._script, action], check=True, capture_output=True, env={**os.environ, **ENV})

    async def start(self) -> None:
        await asyncio.to_thread(self._run, "start")

    async def stop(self) -> None:
        await asyncio.to_thread(self._run, "stop")


@pytest.fixture(scope="session")
async def chaos_servers():
    postgres, kafka = Server("postgres.sh"), Server("kafka.sh")
    await postgres.start()
    await kafka.start()
    yield postgres, kafka
    await kafka.stop()
    await postgres.stop()
