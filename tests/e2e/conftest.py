"""One running system for the end-to-end tests of a module: five service processes on a
database and topics of their own, and an SMTP server of the test's. Each test makes its
own contacts and campaigns, and looks only at its own recipients."""

import uuid
from contextlib import asynccontextmanager

import pytest

from servicekit.topics import ensure_topics
from tests.support.kafka import delete_topics
from tests.support.servers import create_database, drop_database
from tests.support.smtp import SmtpServer
from tests.support.system import Gateway, System, stop


@asynccontextmanager
async def running_system(postgres_url, kafka_bootstrap, logs, **env: str):
    """(system, gateway, SMTP server): the five services on a database and topics of their own."""
    database_url = await create_database(postgres_url)
    prefix = f"e{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix)
    with SmtpServer() as smtp:
        running = System(database_url, kafka_bootstrap, prefix, smtp.port, logs, extra_env=env)
        try:
            await running.start_all()
            gateway = Gateway(running.gateway)
            yield running, gateway, smtp
            await gateway.close()
        finally:
            await stop(running)
    await drop_database(postgres_url, database_url)
    await delete_topics(kafka_bootstrap, prefix)


@pytest.fixture(scope="module")
async def system(postgres_url, kafka_bootstrap, tmp_path_factory):
    """Retries a second apart, for the tests of deferrals."""
    async with running_system(postgres_url, kafka_bootstrap, tmp_path_factory.mktemp("logs"),
                              SMTP_RETRY_INITIAL_SECONDS="1", SMTP_RETRY_MAX_SECONDS="2") as running:
        yield running
