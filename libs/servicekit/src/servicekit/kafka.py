"""Kafka for every service: the idempotent publisher and the one consumer loop.

The loop: `getmany` with a timeout; each partition's messages handled in order (the
partitions of one batch concurrently); offsets committed per partition only after the
handler returned, i.e. after its work is durable. One failure policy:

- a message that cannot be decoded (its value or its headers), fails validation, or is
  rejected by the domain (`Rejected`) goes to `<topic>.dlq` at once, with the error in
  its headers, and the loop moves on (`python -m servicekit.dlq` replays dead letters);
- any other failure is the infrastructure's (database, broker, network, timeout): the
  same message is tried again, with capped backoff, for as long as it takes. Meanwhile
  /healthz says degraded and /metrics counts the retries (`servicekit.health`).

A stop (SIGTERM) or a rebalance lets the message or chunk in flight finish, commits what
is done, and hands the rest back: batch handlers take chunks of a partition's messages
(`Subscription.chunks`), so that is one chunk, never a whole fetch.
"""

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
)
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from contracts.codec import CORRELATION_HEADER, Message, UndecodableMessage, decode, encode
from contracts.events import Event
from contracts.topics import dlq_of
from servicekit.partitioner import partition_of
from servicekit.retry import BACKOFF, persistently

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
    """Publishes events with an idempotent producer (acks=all).

    aiokafka's idempotent producer can come back from a broker outage out of step with the
    broker's sequence numbers, and then fails every later send to that partition with
    OutOfOrderSequenceNumber until it is replaced (aio-libs/aiokafka#1017; seen here in
    the fault suite, where the mailer's outbox then retried for ever). Given `renew` (a
    started producer, new each call), the publisher replaces its producer before the
    next send once one failed so: a new producer id starts its sequences afresh. What
    the old one had in flight fails and is sent again by its caller (at least once)."""

    def __init__(self, producer: AIOKafkaProducer, topics: Topics,
                 renew: Callable[[], Awaitable[AIOKafkaProducer]] | None = None) -> None:
        self._producer = producer
        self._topics = topics
        self._renew = renew
        self._out_of_step = False
        self._renewing = asyncio.Lock()

    async def publish(self, event: Event) -> None:
        await (await self.send(encode(event, correlation_id.get())))

    async def publish_all(self, events: Iterable[Event]) -> None:
        messages = [encode(event, correlation_id.get()) for event in events]
        await self.send_all(messages)

    async def send(self, message: Message) -> asyncio.Future:
        """Queues one message; the returned future resolves when the broker has it."""
        if self._out_of_step:
            await self._replace_producer()
        producer = self._producer
        delivered = await producer.send(
            self._topics.physical(message.topic),
            value=message.value,
            key=message.key,
            headers=message.headers,
        )
        delivered.add_done_callback(lambda future: self._heard(future, producer))
        return delivered

    async def send_all(self, messages: Iterable[Message]) -> None:
        pending = set(await self.send_many(list(messages)))
        if pending:
            await asyncio.gather(*pending)

    async def send_many(self, messages: list[Message]) -> list[asyncio.Future]:
        """Queues the messages as record batches, one per partition (more when one fills),
        in their order within each partition; returns each message's future, its batch's.
        A future per batch, not per message: 13-15 µs of CPU a message against 25-37
        (aiokafka's send, 50,000 messages of 700 bytes to 12 partitions)."""
        if self._out_of_step:
            await self._replace_producer()
        producer = self._producer
        by_partition: dict[tuple[str, int], list[int]] = {}
        partitions: dict[str, list[int]] = {}
        for index, message in enumerate(messages):
            topic = self._topics.physical(message.topic)
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            by_partition.setdefault((topic, partition_of(message.key, partitions[topic], [])), []).append(index)
        futures: list[asyncio.Future | None] = [None] * len(messages)
        for (topic, partition), indexes in by_partition.items():
            batch, members = producer.create_batch(), []
            for index in indexes:
                message = messages[index]
                if batch.append(key=message.key, value=message.value, timestamp=None, headers=message.headers) is None:
                    if not members:  # too large for a batch of its own: the producer's checks say why
                        futures[index] = await self._alone(message)
                        continue
                    self._submitted(await producer.send_batch(batch, topic, partition=partition), members, futures,
                                    producer)
                    batch, members = producer.create_batch(), []
                    if batch.append(key=message.key, value=message.value, timestamp=None,
                                    headers=message.headers) is None:
                        futures[index] = await self._alone(message)
                        continue
                members.append(index)
            if members:
                self._submitted(await producer.send_batch(batch, topic, partition=partition), members, futures,
                                producer)
        return futures

    async def _alone(self, message: Message) -> asyncio.Future:
        """The message sent by itself; the producer refusing it as too large is its future's
        error, as the broker refusing a batch would be."""
        try:
            return await self.send(message)
        except MessageSizeTooLargeError as error:
            refused = asyncio.get_running_loop().create_future()
            refused.set_exception(error)
            return refused

    def _submitted(self, delivered: asyncio.Future, members: list[int], futures: list, producer: AIOKafkaProducer) -> None:
        delivered.add_done_callback(lambda future: self._heard(future, producer))
        for index in members:
            futures[index] = delivered

    def _heard(self, delivered: asyncio.Future, producer: AIOKafkaProducer) -> None:
        if (self._renew is not None and producer is self._producer and not delivered.cancelled()
                and isinstance(delivered.exception(), OutOfOrderSequenceNumber)):
            self._out_of_step = True

    async def _replace_producer(self) -> None:
        async with self._renewing:
            if not self._out_of_step:  # replaced meanwhile
                return
            old = self._producer
            self._producer = await self._renew()
            self._out_of_step = False
            log.warning("kafka_producer_replaced", reason="OutOfOrderSequenceNumber")
            try:
                await asyncio.wait_for(old.stop(), 10)
            except Exception as error:  # what it still held fails; its callers send it again
                log.warning("kafka_producer_stop_failed", error=repr(error))

    async def close(self) -> None:
        await self._producer.stop()


def make_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=True,  # implies acks=all
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
        partitioner=partition_of,  # the Java client's partitions, faster than aiokafka's
    )


@dataclass
class Subscription:
    """What one consumer group reacts to: a handler per topic."""

    group: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)
    max_records: int = 500
    # Waits between tries of a handler the infrastructure fails, the last one repeated.
    backoff: tuple[float, ...] = BACKOFF
    # Most events a batch handler takes at once, per topic (default: all of a fetch).
    chunks: dict[str, int] = field(default_factory=dict)
    # Topics whose events are independent of each other (segment.evaluated batches) may
    # have up to this many records of one partition handled at once; others go in order.
    concurrency: dict[str, int] = field(default_factory=dict)
    # Asked when partitions are assigned: True reads them again from their start (e.g. a
    # cache built from a compacted topic that finds itself empty).
    from_start_if: Callable[[], Awaitable[bool]] | None = None


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, loop: "ConsumerLoop", consumer: AIOKafkaConsumer, subscription: Subscription) -> None:
        self._loop, self._consumer, self._subscription = loop, consumer, subscription

    async def on_partitions_revoked(self, revoked) -> None:
        self._loop.handing_back.set()  # the batch in flight stops after its current message or chunk
        async with self._loop.lock:  # ... and commits what it did
            self._loop.handing_back.clear()

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
        self.lock = asyncio.Lock()
        self.handing_back = asyncio.Event()  # a rebalance wants the partitions back
        self._stop = asyncio.Event()
        self._component = f"consumer {subscription.group}"
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
        self._stop = stop
        subscribed = [*self._subscription.handlers, *self._subscription.batch_handlers]
        physical = [self._topics.physical(topic) for topic in subscribed]
        self._consumer.subscribe(physical, listener=_Rebalance(self, self._consumer, self._subscription))
        await self._retrying("kafka", self._consumer.start)
        log.info("consumer_started", group=self._subscription.group, topics=physical)
        try:
            while not stop.is_set():
                batch = await self._retrying("kafka", lambda: self._consumer.getmany(
                    timeout_ms=500, max_records=self._subscription.max_records))
                if batch:
                    async with self.lock:
                        done = await asyncio.gather(*(self._partition(tp, records) for tp, records in batch.items()),
                                                    return_exceptions=True)
                    failures = [outcome for outcome in done if isinstance(outcome, BaseException)]
                    if failures and not stop.is_set():
                        raise failures[0]
        finally:
            await self._consumer.stop()  # commits nothing more, and leaves the group at once
            log.info("consumer_stopped", group=self._subscription.group)

    def _winding_down(self) -> bool:
        return self._stop.is_set() or self.handing_back.is_set()

    async def _partition(self, partition: TopicPartition, records: list[ConsumerRecord]) -> None:
        topic = self._topics.logical(partition.topic)
        if topic in self._subscription.batch_handlers:
            size = self._subscription.chunks.get(topic) or len(records)
            for start in range(0, len(records), size):
                chunk = records[start:start + size]
                await self._batch(chunk)
                await self._commit(partition, chunk[-1])
                if self._winding_down():
                    return self._hand_back(partition, records, start + size)
        elif (width := self._subscription.concurrency.get(topic, 1)) > 1:
            slots = asyncio.Semaphore(width)

            async def one(record: ConsumerRecord) -> None:
                async with slots:
                    await self._one(record, await self._decode(record))

            await asyncio.gather(*(one(record) for record in records))
            await self._commit(partition, records[-1])
        else:
            # Records are handled one after another, in order; the next one is decoded
            # while the current handler waits on I/O (decoding a big batch is real work).
            decoding = asyncio.ensure_future(self._decode(records[0]))
            for index, record in enumerate(records):
                decoded = await decoding
                if index + 1 < len(records):
                    decoding = asyncio.ensure_future(self._decode(records[index + 1]))
                await self._one(record, decoded)
                if self._winding_down() and index + 1 < len(records):
                    decoding.cancel()
                    await self._commit(partition, record)
                    return self._hand_back(partition, records, index + 1)
            await self._commit(partition, records[-1])

    def _hand_back(self, partition: TopicPartition, records: list[ConsumerRecord], done: int) -> None:
        """What was fetched but not handled is read again from the committed offset, here
        after a rebalance, or by whoever gets the partition."""
        if done < len(records):
            log.info("handing_back", partition=partition.partition, unhandled=len(records) - done)
            if not self._stop.is_set():
                try:
                    self._consumer.seek(partition, records[done].offset)
                except IllegalStateError:  # no longer ours: its next owner starts at the commit
                    pass

    async def _commit(self, partition: TopicPartition, last: ConsumerRecord) -> None:
        try:
            await self._retrying("kafka", lambda: self._consumer.commit({partition: last.offset + 1}),
                                 give_up=(CommitFailedError, IllegalStateError))
        except (CommitFailedError, IllegalStateError) as error:
            # The partition went to another member meanwhile: it reads from the last commit,
            # and what was done since is done again, which changes nothing (idempotent handlers).
            log.warning("commit_refused", partition=partition.partition, error=repr(error))

    async def _decode(self, record: ConsumerRecord) -> Event | UndecodableMessage:
        try:
            return decode(self._topics.logical(record.topic), record.key, record.value)
        except UndecodableMessage as error:
            return error

    async def _one(self, record: ConsumerRecord, decoded: Event | UndecodableMessage) -> None:
        topic = self._topics.logical(record.topic)
        with structlog.contextvars.bound_contextvars(topic=topic, offset=record.offset):
            try:
                correlation = _correlation_of(record)
            except UndecodableMessage as error:
                await self._dead_letter(record, topic, f"undecodable: {error}")
                return
            if isinstance(decoded, UndecodableMessage):
                await self._dead_letter(record, topic, f"undecodable: {decoded}")
                return
            token = correlation_id.set(correlation)
            try:
                with structlog.contextvars.bound_contextvars(**_ids(decoded)):
                    await self._handle(record, topic, decoded)
            finally:
                correlation_id.reset(token)

    async def _batch(self, records: list[ConsumerRecord]) -> None:
        topic = self._topics.logical(records[0].topic)
        good: list[tuple[ConsumerRecord, Event]] = []
        for record in records:
            decoded = await self._decode(record)
            try:
                _correlation_of(record)
            except UndecodableMessage as error:
                decoded = error
            if isinstance(decoded, UndecodableMessage):
                await self._dead_letter(record, topic, f"undecodable: {decoded}")
            else:
                good.append((record, decoded))
        if not good:
            return
        handler = self._subscription.batch_handlers[topic]
        try:
            await self._retrying(self._component, lambda: handler([event for _, event in good]),
                                 give_up=(Rejected, ValidationError))
        except (Rejected, ValidationError) as error:
            log.warning("batch_rejected", error=repr(error), size=len(good))
            for record, event in good:  # one by one: the DLQ gets only what is rejected alone
                await self._one(record, event)

    async def _handle(self, record: ConsumerRecord, topic: str, event: Event) -> None:
        single = self._subscription.handlers.get(topic)
        handler = single or (lambda event: self._subscription.batch_handlers[topic]([event]))
        try:
            await self._retrying(self._component, lambda: handler(event), give_up=(Rejected, ValidationError))
        except (Rejected, ValidationError) as error:
            await self._dead_letter(record, topic, f"rejected: {error}")

    async def _retrying(self, component: str, attempt: Callable[[], Awaitable], give_up: tuple = ()):
        """`attempt()` for as long as it takes (servicekit.retry); a stop ends the waiting
        (and the service: the message is not committed)."""
        return await persistently(component, attempt, stop=self._stop, waits=self._subscription.backoff,
                                  give_up=give_up)

    async def _dead_letter(self, record: ConsumerRecord, topic: str, error: str) -> None:
        log.warning("dead_lettered", error=error[:500])
        headers = list(record.headers or ()) + [
            ("dlq.error", error.encode()[:4000]),
            ("dlq.consumer", self._subscription.group.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
        ]
        message = Message(dlq_of(topic), record.key or b"", record.value, headers)
        await self._retrying("kafka", lambda: self._publisher.send_all([message]))


def _correlation_of(record: ConsumerRecord) -> str | None:
    """The correlation id header, which other systems set too: not UTF-8, the message is undecodable."""
    raw = dict(record.headers or ()).get(CORRELATION_HEADER)
    try:
        return raw.decode() or None if raw else None
    except UnicodeDecodeError:
        raise UndecodableMessage(f"header {CORRELATION_HEADER!r} is not UTF-8: {raw[:64]!r}") from None


def _ids(event: Event) -> dict[str, str]:
    """The ids a log line of this event should carry."""
    ids = {"event_id": str(event.event_id)}
    for name in ("campaign_id", "run_id", "send_id"):
        value = getattr(event, name, None)
        if value is not None:
            ids[name] = str(value)
    return ids
