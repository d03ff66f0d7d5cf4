"""Creates every topic of the contracts (and their DLQs): `python -m servicekit.topics`.

Safe to run again: topics that exist are left as they are.
"""

import asyncio
import os

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import ALL_TOPICS
from servicekit.kafka import Topics

TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(bootstrap_servers: str, prefix: str = "", timeout: float = 60.0) -> list[str]:
    """Creates the missing topics, waiting up to `timeout` for the broker; returns those made."""
    names = Topics(prefix)
    new = [
        NewTopic(
            names.physical(spec.name),
            num_partitions=spec.partitions,
            replication_factor=1,
            topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
        )
        for spec in ALL_TOPICS
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    await asyncio.wait_for(_start(admin), timeout)
    try:
        response = await admin.create_topics(new)
        created = []
        for topic, code, *rest in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"cannot create topic {topic}: error {code} {rest}")
            if code == 0:
                created.append(topic)
        return created
    finally:
        await admin.close()


async def _start(admin: AIOKafkaAdminClient) -> None:
    while True:
        try:
            await admin.start()
            return
        except Exception:  # the broker is still starting
            await asyncio.sleep(0.5)


if __name__ == "__main__":
    made = asyncio.run(
        ensure_topics(
            os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:59092"),
            os.environ.get("KAFKA_TOPIC_PREFIX", ""),
        )
    )
    print(f"topics ready ({len(made)} created)")
