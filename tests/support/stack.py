"""A whole running system for a module of tests: the five services as processes on a
database and topics of their own, and an SMTP server of the module's own; all of it
removed afterwards."""

import uuid
from contextlib import asynccontextmanager

from servicekit.topics import ensure_topics
from tests.support.kafka import delete_topics
from tests.support.servers import create_database, drop_database
from tests.support.smtp import SmtpServer
from tests.support.system import Gateway, System, stop


@asynccontextmanager
async def running_system(postgres_url, kafka_bootstrap, logs, tag: str = "e", **env: str):
    """(system, gateway, SMTP server); `tag` starts the topics' prefix, `env` sets the services'."""
    database_url = await create_database(postgres_url)
    prefix = f"{tag}{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix)
    with SmtpServer() as smtp:
        running = System(database_url, kafka_bootstrap, prefix, smtp.port, logs, extra_env=env)
        try:
            await running.start_all()
            gateway = Gateway(running.gateway)
            try:
                yield running, gateway, smtp
            finally:
                await gateway.close()
        finally:
            await stop(running)
    await drop_database(postgres_url, database_url)
    await delete_topics(kafka_bootstrap, prefix)
