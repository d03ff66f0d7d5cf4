"""Where the real servers of the tests come from, decided once for the whole suite:

1. DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS when set (a server someone runs for us);
2. testcontainers when a Docker engine answers;
3. otherwise the project's own deploy scripts, as the `test` instance (.local/test).

Each test then makes its own database and its own topic prefix, so tests never see each
other's data and can run in any order.
"""

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from servicekit.topics import ensure_topics
from tests.support.kafka import delete_topics
from tests.support.servers import KAFKA_BOOTSTRAP, POSTGRES_URL, create_database, drop_database, start_local


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def postgres_url():
    if url := os.environ.get("DATABASE_URL"):
        yield url
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        start_local("postgres.sh")
        yield POSTGRES_URL


@pytest.fixture(scope="session")
def kafka_bootstrap():
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        start_local("kafka.sh")
        yield KAFKA_BOOTSTRAP


@pytest.fixture
async def database_url(postgres_url):
    """A database of this test's own, dropped afterwards."""
    url = await create_database(postgres_url)
    yield url
    await drop_database(postgres_url, url)


@pytest.fixture
async def topic_prefix(kafka_bootstrap):
    """Topics of this test's own (every topic of the contracts, under a unique prefix)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix)
    yield prefix
    await delete_topics(kafka_bootstrap, prefix)


@pytest.fixture
async def publisher(kafka_bootstrap, topic_prefix):
    """The services' own publisher, on this test's topics."""
    from servicekit.kafka import EventPublisher, Topics, make_producer

    producer = make_producer(kafka_bootstrap)
    await producer.start()
    yield EventPublisher(producer, Topics(topic_prefix))
    await producer.stop()


@pytest.fixture
async def service_pool(database_url):
    """`await service_pool(schema, package)`: the service's migrations applied (with the
    outbox's) to this test's database, and a pool on its schema."""
    from importlib import import_module

    from servicekit.database import SHARED_SQL, create_pool, migrate

    pools = []

    async def open_pool(schema: str, package: str):
        migrations = Path(import_module(package).__file__).parent / "migrations"
        await migrate(database_url, schema, SHARED_SQL, migrations)
        pools.append(await create_pool(database_url, schema))
        return pools[-1]

    yield open_pool
    for pool in pools:
        await pool.close()
