"""What a service's aiohttp app holds, opened and closed in its `cleanup_ctx`."""

import asyncio

import asyncpg
import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer

from servicekit.database import Migrations, create_pool, migrate
from servicekit.kafka import EventPublisher, Topics, make_producer
from servicekit.settings import CommonSettings

log = structlog.get_logger()

POOL = web.AppKey("pool", asyncpg.Pool)
PUBLISHER = web.AppKey("publisher", EventPublisher)


def postgres(settings: CommonSettings, schema: str, owners: list[Migrations]):
    """Applies the owners' migrations in their order, then opens the pool."""

    async def context(app: web.Application):
        await migrate(settings.database_url, schema, *owners)
        app[POOL] = await create_pool(settings.database_url, schema, settings.db_pool_size)
        yield
        await app[POOL].close()

    return context


def kafka_publisher(settings: CommonSettings, start_timeout: float = 60.0):
    async def started() -> AIOKafkaProducer:
        producer = make_producer(settings.kafka_bootstrap_servers)
        await _start(producer, start_timeout)
        return producer

    async def context(app: web.Application):
        app[PUBLISHER] = EventPublisher(await started(), Topics(settings.kafka_topic_prefix), renew=started)
        yield
        await app[PUBLISHER].close()

    return context


async def _start(client, timeout: float) -> None:
    """Starts a Kafka client, waiting for a broker that is still coming up."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await client.start()
            return
        except Exception as error:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("kafka_not_ready", error=repr(error))
            await asyncio.sleep(1.0)
