"""Dead letters, for whoever fixed their cause:

    python -m servicekit.dlq show TOPIC      # what <TOPIC>.dlq holds: offset, key, error
    python -m servicekit.dlq replay TOPIC    # feeds them back to TOPIC, each once

TOPIC is the contracts' name (e.g. contact.upserted); KAFKA_BOOTSTRAP_SERVERS and
KAFKA_TOPIC_PREFIX say where. A replay publishes each dead letter's original key, value
and headers (not the dlq.* ones) to its topic, up to what the DLQ held when it started,
and remembers how far it got in the consumer group `dlq-replay`: run again, it replays
only what was dead-lettered since. The consumers' handlers are idempotent, so a message
replayed after a crash between publish and commit changes nothing twice.
"""

import argparse
import asyncio
import sys
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.structs import TopicPartition

from contracts.codec import Message
from contracts.topics import dlq_of
from servicekit.kafka import EventPublisher, Topics, make_producer
from servicekit.settings import CommonSettings

GROUP = "dlq-replay"


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    error: str
    record: ConsumerRecord

    @classmethod
    def of(cls, record: ConsumerRecord) -> "DeadLetter":
        headers = dict(record.headers or ())
        return cls(record.partition, record.offset, record.key,
                   headers.get("dlq.error", b"").decode(errors="replace"), record)

    def original(self, topic: str) -> Message:
        headers = [(name, value) for name, value in self.record.headers or () if not name.startswith("dlq.")]
        return Message(topic, self.key or b"", self.record.value, headers)


async def _read(bootstrap: str, physical_dlq: str, group: str | None, handle) -> int:
    """Hands each dead letter up to the DLQ's end as of now to `handle`, partition by
    partition; with a group, from where it last got to, committing as it goes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    count = 0
    try:
        partitions = [TopicPartition(physical_dlq, p) for p in sorted(consumer.partitions_for_topic(physical_dlq)
                                                                       or await _partitions(consumer, physical_dlq))]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for partition in partitions:
            if group is None:
                await consumer.seek_to_beginning(partition)
            while await consumer.position(partition) < ends[partition]:
                batch = await consumer.getmany(partition, timeout_ms=1000, max_records=500)
                records = [r for r in batch.get(partition, []) if r.offset < ends[partition]]
                for record in records:
                    await handle(DeadLetter.of(record))
                    count += 1
                if records and group is not None:
                    await consumer.commit({partition: records[-1].offset + 1})
    finally:
        await consumer.stop()
    return count


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # the topic may not be in the metadata yet
    found = consumer.partitions_for_topic(topic)
    if not found:
        raise SystemExit(f"no topic {topic}")
    return found


async def show(bootstrap: str, topics: Topics, topic: str, out=sys.stdout) -> int:
    async def line(letter: DeadLetter) -> None:
        print(f"{letter.partition}:{letter.offset}\t{(letter.key or b'').decode(errors='replace')}\t{letter.error}",
              file=out)

    return await _read(bootstrap, topics.physical(dlq_of(topic)), None, line)


async def replay(bootstrap: str, topics: Topics, topic: str) -> int:
    producer = make_producer(bootstrap)
    await producer.start()
    publisher = EventPublisher(producer, topics)
    try:
        async def again(letter: DeadLetter) -> None:
            await publisher.send_all([letter.original(topic)])

        return await _read(bootstrap, topics.physical(dlq_of(topic)), topics.physical(GROUP), again)
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m servicekit.dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["show", "replay"])
    parser.add_argument("topic", help="the topic whose dead letters to show or replay, e.g. contact.upserted")
    arguments = parser.parse_args(argv)
    settings = CommonSettings()
    names = Topics(settings.kafka_topic_prefix)
    if arguments.command == "show":
        count = asyncio.run(show(settings.kafka_bootstrap_servers, names, arguments.topic))
        print(f"{count} dead letters in {names.physical(dlq_of(arguments.topic))}", file=sys.stderr)
    else:
        count = asyncio.run(replay(settings.kafka_bootstrap_servers, names, arguments.topic))
        print(f"{count} dead letters replayed to {names.physical(arguments.topic)}")


if __name__ == "__main__":
    main()
