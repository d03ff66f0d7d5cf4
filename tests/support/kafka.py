"""Reading what the services published, straight from the real broker."""

from uuid import uuid4

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from contracts.topics import ALL_TOPICS
from tests.support.polling import eventually


def partitions_of(topic: str) -> int:
    return next(spec.partitions for spec in ALL_TOPICS if topic.endswith(spec.name))


async def read_all(kafka_bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list:
    """At least `count` messages of `topic`, from its beginning."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                group_id=f"reader-{uuid4()}")
    await consumer.start()
    records = []
    try:
        async def enough():
            batch = await consumer.getmany(timeout_ms=200)
            records.extend(r for part in batch.values() for r in part)
            return len(records) >= count

        await eventually(enough, f"{count} messages on {topic}", timeout=timeout)
        return records
    finally:
        await consumer.stop()


async def message_count(kafka_bootstrap: str, topic: str) -> int:
    """How many messages `topic` holds (its partitions' end offsets; nothing is deleted in tests)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partitions_of(topic))]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def committed_lag(kafka_bootstrap: str, group: str, topic: str) -> int:
    """Messages of `topic` past what `group` committed."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partitions_of(topic))]
        ends = await consumer.end_offsets(partitions)
        lag = 0
        for tp in partitions:
            lag += ends[tp] - (await consumer.committed(tp) or 0)
        return lag
    finally:
        await consumer.stop()


async def delete_topics(kafka_bootstrap: str, prefix: str) -> None:
    """Every topic under `prefix`: a test's topics go with it, or a broker that has seen a
    few thousand tests runs out of file descriptors (three open files per partition)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        mine = [topic for topic in await admin.list_topics() if topic.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
