"""Kafka for every service: the idempotent publisher and the one consumer loop.

The loop: `getmany` with a timeout; each partition's messages handled in order (the
partitions of one batch concurrently); offsets committed per partition only after the
handler returned, i.e. after its work is durable; a message that cannot be decoded, or
whose handler keeps failing, goes to `<topic>.dlq` with the error in its headers, and the
loop moves on. A rebalance waits for the batch in flight to finish and commit.
"""

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from contracts.codec import CORRELATION_HEADER, Message, UndecodableMessage, decode, encode
from contracts.events import Event
from contracts.topics import dlq_of

log = structlog.get_logger()

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

Handler = Callable[[Event], Awaitable[None]]
# Takes the events of one partition batch together, where batching is the point (the
# mailer). A batch that keeps failing is handled again one event at a time, so that one
# bad event goes to the DLQ alone.
BatchHandler = Callable[[list[Event]], Awaitable[None]]


class Rejected(Exception):
    """A handler's verdict that an event can never be processed: straight to the DLQ."""


class Topics:
    """Maps the contracts' topic names to the broker's, under KAFKA_TOPIC_PREFIX."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def physical(self, topic: str) -> str:
        return self.prefix + topic

    def logical(self, topic: str) -> str:
        return topic.removeprefix(self.prefix)


class EventPublisher:
    """Publishes events with an idempotent producer (acks=all)."""

    def __init__(self, producer: AIOKafkaProducer, topics: Topics) -> None:
        self._producer = producer
        self._topics = topics

    async def publish(self, event: Event) -> None:
        await (await self.send(encode(event, correlation_id.get())))

    async def publish_all(self, events: Iterable[Event]) -> None:
        messages = [encode(event, correlation_id.get()) for event in events]
        await self.send_all(messages)

    async def send(self, message: Message) -> asyncio.Future:
        """Queues one message; the returned future resolves when the broker has it."""
        return await self._producer.send(
            self._topics.physical(message.topic),
            value=message.value,
            key=message.key,
            headers=message.headers,
        )

    async def send_all(self, messages: Iterable[Message]) -> None:
        pending = [await self.send(message) for message in messages]
        if pending:
            await asyncio.gather(*pending)


def make_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=True,  # implies acks=all
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


@dataclass
class Subscription:
    """What one consumer group reacts to: a handler per topic."""

    group: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)
    max_records: int = 500
    retries: tuple[float, ...] = (0.2, 1.0, 5.0)  # waits between tries of a failing handler
    # Topics whose events are independent of each other (segment.evaluated batches) may
    # have up to this many records of one partition handled at once; others go in order.
    concurrency: dict[str, int] = field(default_factory=dict)
    # Asked when partitions are assigned: True reads them again from their start (e.g. a
    # cache built from a compacted topic that finds itself empty).
    from_start_if: Callable[[], Awaitable[bool]] | None = None


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, lock: asyncio.Lock, consumer: AIOKafkaConsumer, subscription: Subscription) -> None:
        self._lock, self._consumer, self._subscription = lock, consumer, subscription

    async def on_partitions_revoked(self, revoked) -> None:
        async with self._lock:  # waits for the batch in flight to finish and commit
            pass

    async def on_partitions_assigned(self, assigned) -> None:
        replay = self._subscription.from_start_if
        if assigned and replay is not None and await replay():
            log.info("reading_from_start", partitions=len(assigned))
            await self._consumer.seek_to_beginning(*assigned)


class ConsumerLoop:
    def __init__(
        self,
        bootstrap_servers: str,
        topics: Topics,
        subscription: Subscription,
        publisher: EventPublisher,
    ) -> None:
        self._topics = topics
        self._subscription = subscription
        self._publisher = publisher
        self._lock = asyncio.Lock()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=topics.physical(subscription.group),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=600_000,
            # Large batches (segment.evaluated) come 8 MB at a time per partition, not 1 MB.
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )

    async def run(self, stop: asyncio.Event) -> None:
        subscribed = [*self._subscription.handlers, *self._subscription.batch_handlers]
        physical = [self._topics.physical(topic) for topic in subscribed]
        self._consumer.subscribe(physical, listener=_Rebalance(self._lock, self._consumer, self._subscription))
        await self._consumer.start()
        log.info("consumer_started", group=self._subscription.group, topics=physical)
        try:
            while not stop.is_set():
                batch = await self._consumer.getmany(
                    timeout_ms=500, max_records=self._subscription.max_records
                )
                if batch:
                    async with self._lock:
                        await asyncio.gather(*(self._partition(tp, records) for tp, records in batch.items()))
        finally:
            await self._consumer.stop()

    async def _partition(self, partition: TopicPartition, records: list[ConsumerRecord]) -> None:
        topic = self._topics.logical(partition.topic)
        if topic in self._subscription.batch_handlers:
            await self._batch(records)
        elif (width := self._subscription.concurrency.get(topic, 1)) > 1:
            slots = asyncio.Semaphore(width)

            async def one(record: ConsumerRecord) -> None:
                async with slots:
                    await self._one(record, await self._decode(record))

            await asyncio.gather(*(one(record) for record in records))
        else:
            # Records are handled one after another, in order; the next one is decoded
            # while the current handler waits on I/O (decoding a big batch is real work).
            decoding = asyncio.ensure_future(self._decode(records[0]))
            for index, record in enumerate(records):
                decoded = await decoding
                if index + 1 < len(records):
                    decoding = asyncio.ensure_future(self._decode(records[index + 1]))
                await self._one(record, decoded)
        await self._consumer.commit({partition: records[-1].offset + 1})

    async def _decode(self, record: ConsumerRecord) -> Event | UndecodableMessage:
        try:
            return decode(self._topics.logical(record.topic), record.key, record.value)
        except UndecodableMessage as error:
            return error

    async def _one(self, record: ConsumerRecord, decoded: Event | UndecodableMessage) -> None:
        topic = self._topics.logical(record.topic)
        headers = dict(record.headers or ())
        token = correlation_id.set((headers.get(CORRELATION_HEADER) or b"").decode() or None)
        try:
            with structlog.contextvars.bound_contextvars(topic=topic, offset=record.offset):
                if isinstance(decoded, UndecodableMessage):
                    await self._dead_letter(record, topic, f"undecodable: {decoded}")
                    return
                with structlog.contextvars.bound_contextvars(**_ids(decoded)):
                    await self._handle(record, topic, decoded)
        finally:
            correlation_id.reset(token)

    async def _batch(self, records: list[ConsumerRecord]) -> None:
        topic = self._topics.logical(records[0].topic)
        good: list[tuple[ConsumerRecord, Event]] = []
        for record in records:
            decoded = await self._decode(record)
            if isinstance(decoded, UndecodableMessage):
                await self._dead_letter(record, topic, f"undecodable: {decoded}")
            else:
                good.append((record, decoded))
        if not good:
            return
        handler = self._subscription.batch_handlers[topic]
        try:
            await handler([event for _, event in good])
        except Exception as error:
            log.warning("batch_failed", error=repr(error), size=len(good))
            for record, event in good:  # one by one: the DLQ gets only what fails alone
                await self._one(record, event)

    async def _handle(self, record: ConsumerRecord, topic: str, event: Event) -> None:
        single = self._subscription.handlers.get(topic)
        handler = single or (lambda event: self._subscription.batch_handlers[topic]([event]))
        waits = self._subscription.retries
        for attempt in range(len(waits) + 1):
            try:
                await handler(event)
                return
            except (Rejected, ValidationError) as error:
                await self._dead_letter(record, topic, f"rejected: {error}")
                return
            except Exception as error:  # infrastructure trouble: try again, then give up
                if attempt == len(waits):
                    log.exception("handler_failed", attempts=attempt + 1)
                    await self._dead_letter(record, topic, f"failed: {error!r}")
                    return
                log.warning("handler_retry", attempt=attempt + 1, error=repr(error))
                await asyncio.sleep(waits[attempt])

    async def _dead_letter(self, record: ConsumerRecord, topic: str, error: str) -> None:
        log.warning("dead_lettered", error=error[:500])
        headers = list(record.headers or ()) + [
            ("dlq.error", error.encode()[:4000]),
            ("dlq.consumer", self._subscription.group.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
        ]
        await self._publisher.send_all(
            [Message(dlq_of(topic), record.key or b"", record.value, headers)]
        )


def _ids(event: Event) -> dict[str, str]:
    """The ids a log line of this event should carry."""
    ids = {"event_id": str(event.event_id)}
    for name in ("campaign_id", "run_id", "send_id"):
        value = getattr(event, name, None)
        if value is not None:
            ids[name] = str(value)
    return ids
