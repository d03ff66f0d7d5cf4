"""An outbox message too large to publish, on the real Kafka and PostgreSQL: set aside
with its error, logged and counted, and the relay goes on with the rows after it."""

import asyncio
from uuid import uuid4

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts import topics
from contracts.codec import decode, encode
from contracts.events import CampaignScheduled, EmailStatus
from servicekit.database import SHARED_SQL, create_pool, migrate
from servicekit.health import REGISTRY
from servicekit.kafka import Topics
from servicekit.outbox import OutboxRelay, add, add_bundle, bundle
from tests.support.kafka import read_all
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


def scheduled(sends: int, campaign_id) -> CampaignScheduled:
    return CampaignScheduled(campaign_id=campaign_id, run_id=uuid4(), recipients=1, sends=sends)


def status_of(size: int) -> EmailStatus:
    """An email.status carrying `size` bytes of SMTP answer: larger than any broker takes, when asked."""
    return EmailStatus(send_id=uuid4(), campaign_id=uuid4(), run_id=uuid4(), step_index=0, contact_id=uuid4(),
                       status="failed", attempt=1, smtp_code=554, smtp_message="x" * size)


def rejected_count(topic: str) -> float:
    return REGISTRY.get_sample_value("outbox_rejected_messages_total", {"topic": topic}) or 0.0


async def relay_until_empty(pool, publisher, **options) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(OutboxRelay(pool, publisher, batch_size=3, **options).run(stop))
    try:
        await eventually(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), "the outbox emptied", timeout=30)
    finally:
        stop.set()
        await running


@pytest.fixture
async def pool(database_url):
    schema = f"relay_{uuid4().hex[:8]}"
    await migrate(database_url, schema, SHARED_SQL)
    pool = await create_pool(database_url, schema)
    yield pool
    await pool.close()


async def test_a_message_too_large_to_publish_is_set_aside_and_the_rows_after_it_go_out(
        pool, publisher, kafka_bootstrap, topic_prefix, capsys):
    campaign = uuid4()
    huge = status_of(1_200_000)  # over the producer's 1 MiB
    before = rejected_count(topics.EMAIL_STATUS)
    async with pool.acquire() as connection, connection.transaction():
        await add(connection, scheduled(0, campaign), scheduled(1, campaign))
        await add(connection, huge)
        await add(connection, *[scheduled(n, campaign) for n in range(2, 6)])
        await add_bundle(connection, topics.CAMPAIGN_SCHEDULED, bundle(
            [(m.key, m.value) for m in (encode(scheduled(n, campaign)) for n in range(6, 9))]))
    await relay_until_empty(pool, publisher)

    records = await read_all(kafka_bootstrap, Topics(topic_prefix).physical(topics.CAMPAIGN_SCHEDULED), 9)
    assert [decode(topics.CAMPAIGN_SCHEDULED, r.key, r.value).sends for r in records] == list(range(9)), "in order"
    [aside] = await pool.fetch("SELECT topic, key, value, headers, error FROM outbox_rejected")
    assert (aside["topic"], aside["key"], aside["value"]) == (topics.EMAIL_STATUS, huge.key.encode(),
                                                            encode(huge).value)
    assert "1,000,000" in aside["error"] and dict(aside["headers"])["event_type"] == topics.EMAIL_STATUS
    assert rejected_count(topics.EMAIL_STATUS) == before + 1
    assert "outbox_message_rejected" in capsys.readouterr().out


async def test_a_relay_told_the_brokers_limit_sets_aside_what_it_would_refuse(pool, publisher, kafka_bootstrap,
                                                                              topic_prefix):
    """A broker whose message.max.bytes is below the producer's limit must never see a
    larger message: it would refuse it, and aiokafka's idempotent producer then fails every
    later send to that partition (OutOfOrderSequenceNumber, aio-libs/aiokafka#1017)."""
    names = Topics(topic_prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # this broker takes at most 20,000 bytes on email.status
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, names.physical(topics.EMAIL_STATUS),
                                                  configs={"max.message.bytes": "20000"})])
    finally:
        await admin.close()
    small = [status_of(10) for _ in range(4)]
    large = status_of(50_000)
    async with pool.acquire() as connection, connection.transaction():
        await add(connection, small[0], small[1], large, small[2])
        await add_bundle(connection, topics.EMAIL_STATUS, bundle([(m.key, m.value) for m in map(encode, [large, small[3]])]))
    await relay_until_empty(pool, publisher, max_message_bytes=20_000)

    records = await read_all(kafka_bootstrap, names.physical(topics.EMAIL_STATUS), 4)
    assert sorted(decode(topics.EMAIL_STATUS, r.key, r.value).send_id for r in records) == sorted(s.send_id for s in small)
    errors = [row["error"] for row in await pool.fetch("SELECT error FROM outbox_rejected ORDER BY id")]
    assert len(errors) == 2 and all("over the 20,000 a message may have" in error for error in errors), errors
