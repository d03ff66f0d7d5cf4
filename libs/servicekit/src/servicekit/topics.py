"""Creates every topic of the contracts (and their DLQs): `python -m servicekit.topics`.

Topics are made with `KAFKA_REPLICATION_FACTOR` replicas and `KAFKA_MIN_INSYNC_REPLICAS`
(both 1 by default: one broker). Safe to run again: topics that exist are left as they are.
"""

import asyncio
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import ValidationError

from contracts.topics import ALL_TOPICS
from servicekit.kafka import Topics
from servicekit.settings import TopicSettings, check_replication

TOPIC_ALREADY_EXISTS = 36
INVALID_REPLICATION_FACTOR = 38


async def ensure_topics(
    bootstrap_servers: str,
    prefix: str = "",
    timeout: float = 60.0,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> list[str]:
    """Creates the missing topics, waiting up to `timeout` for the broker; returns those made."""
    check_replication(replication_factor, min_insync_replicas)
    names = Topics(prefix)
    new = [
        NewTopic(
            names.physical(spec.name),
            num_partitions=spec.partitions,
            replication_factor=replication_factor,
            topic_configs={
                "min.insync.replicas": str(min_insync_replicas),
                **({"cleanup.policy": "compact"} if spec.compacted else {}),
            },
        )
        for spec in ALL_TOPICS
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    await asyncio.wait_for(_start(admin), timeout)
    try:
        response = await admin.create_topics(new)
        created = []
        for topic, code, *rest in response.topic_errors:
            if code == INVALID_REPLICATION_FACTOR:
                raise RuntimeError(
                    f"cannot create topic {topic} with {replication_factor} replicas: the cluster has fewer "
                    f"brokers (set KAFKA_REPLICATION_FACTOR to at most their number) {rest}"
                )
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"cannot create topic {topic}: error {code} {rest}")
            if code == 0:
                created.append(topic)
        await _served(admin, [topic.name for topic in new], timeout)
        return created
    finally:
        await admin.close()


async def _served(admin: AIOKafkaAdminClient, names: list[str], timeout: float) -> None:
    """Waits until the broker's metadata holds every topic with a leader for each partition.

    Under KRaft the controller answers CreateTopics before the brokers have the topics, and a
    producer or a DescribeConfigs sent at once gets UNKNOWN_TOPIC_OR_PARTITION.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while unserved := _unserved(await admin.describe_topics(names), names):
        if loop.time() >= deadline:
            raise RuntimeError(f"the broker does not serve {', '.join(unserved)} after {timeout:g} s "
                               "(unknown to it, or a partition without a leader)")
        await asyncio.sleep(0.05)


def _unserved(described: list[dict], names: list[str]) -> list[str]:
    served = {
        topic["topic"] for topic in described
        if topic["error_code"] == 0 and topic["partitions"] and all(p["leader"] >= 0 for p in topic["partitions"])
    }
    return [name for name in names if name not in served]


async def _start(admin: AIOKafkaAdminClient) -> None:
    while True:
        try:
            await admin.start()
            return
        except Exception:  # the broker is still starting
            await asyncio.sleep(0.5)


def main() -> None:
    try:
        settings = TopicSettings()
    except ValidationError as error:
        sys.exit(f"servicekit.topics: {error}")
    try:
        made = asyncio.run(
            ensure_topics(
                settings.kafka_bootstrap_servers,
                settings.kafka_topic_prefix,
                replication_factor=settings.kafka_replication_factor,
                min_insync_replicas=settings.kafka_min_insync_replicas,
            )
        )
    except RuntimeError as error:
        sys.exit(f"servicekit.topics: {error}")
    print(
        f"topics ready ({len(made)} created, replication factor {settings.kafka_replication_factor}, "
        f"min.insync.replicas {settings.kafka_min_insync_replicas})"
    )


if __name__ == "__main__":
    main()
