"""The transactional outbox: `add` in the transaction of the change, `OutboxRelay`
publishes, then deletes what it published.

One relay publishes at a time per schema (a transaction-scoped advisory lock), so events
leave in the order they were written, whichever instance's relay is running. While Kafka
is down the batch's transaction rolls back and is tried again; requests keep succeeding.

A message no broker will ever take (larger than `max_message_bytes`, or refused by the
producer or the broker as too large) would hold up every row after it for ever: it is set
aside instead, in the table `outbox_rejected` with the error (sql/0005_rejected.sql),
logged as an error and counted (`outbox_rejected_messages_total` on /metrics), and the
relay goes on. Nothing else is ever set aside: any other failure is retried.
`max_message_bytes` must not exceed what the broker takes (message.max.bytes, 1,048,588
by default): one the broker refuses is set aside too, but aiokafka's idempotent producer
then fails its later sends to that partition (OutOfOrderSequenceNumber) until the
publisher replaces it (servicekit.kafka.EventPublisher).
"""

import asyncio
import struct
from collections.abc import Iterable
from itertools import groupby

import asyncpg
import structlog
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError
from prometheus_client import Counter

from contracts.codec import MESSAGE_BYTES, Message, encode, encode_headers, message_size
from contracts.events import Event
from servicekit.health import REGISTRY
from servicekit.kafka import EventPublisher, correlation_id
from servicekit.retry import pause, persistently

log = structlog.get_logger()

# What says a message is too large for any retry to help (the producer's max_request_size,
# the broker's message.max.bytes or segment size).
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
WAITS = (1.0, 2.0, 4.0, 8.0, 10.0)  # between tries of a batch the infrastructure failed
REJECTED = Counter("outbox_rejected_messages", "Outbox messages too large to publish, set aside in outbox_rejected",
                   ["topic"], registry=REGISTRY)


async def add(connection: asyncpg.Connection, *events: Event | Message) -> None:
    """The events as outbox rows, in order: a run of two or more of one topic as one row
    (a bundle), so that a batch's events (the mailer's email.status, 50 a chunk) cost one
    row and one statement, not one each. An event may come encoded already (a codec
    function of the hot path's): it gets the headers `encode` would give it."""
    correlation = correlation_id.get()
    messages = [encode(event, correlation) if isinstance(event, Event)
                else Message(event.topic, event.key, event.value, encode_headers(event.topic, correlation))
                for event in events]
    for topic, run in groupby(messages, key=lambda message: message.topic):
        run = list(run)
        if len(run) > 1 and all(message.value is not None for message in run):
            await add_bundle(connection, topic, bundle((message.key, message.value) for message in run))
            continue
        await connection.executemany(
            "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4)",
            [(m.topic, m.key, m.value, _stored(m.headers)) for m in run],
        )


def _headers_for(topic: str) -> list[list[str]]:
    """The headers `add` stores with each event, stored once for a bundle."""
    return _stored(encode_headers(topic, correlation_id.get()))


async def add_bundle(connection: asyncpg.Connection, topic: str, bundled: bytes) -> None:
    """Many messages of one topic, `bundle`d, as one outbox row: bulk work writes a row per
    batch, not per message. The relay publishes them in order."""
    await connection.execute(
        "INSERT INTO outbox (topic, key, headers, messages) VALUES ($1, '', $2, $3)",
        topic, _headers_for(topic), bundled,
    )


def bundle(messages: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Each message as its key's length, its key, its value's length, its value."""
    return b"".join(struct.pack(">I", len(key)) + key + struct.pack(">I", len(value)) + value
                    for key, value in messages)


def unbundle(data: bytes) -> list[tuple[bytes, bytes]]:
    messages, at = [], 0
    while at < len(data):
        (size,) = struct.unpack_from(">I", data, at)
        key, at = data[at + 4:at + 4 + size], at + 4 + size
        (size,) = struct.unpack_from(">I", data, at)
        messages.append((key, data[at + 4:at + 4 + size]))
        at += 4 + size
    return messages


def _stored(headers: list[tuple[str, bytes]]) -> list[list[str]]:
    return [[key, value.decode()] for key, value in headers]


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, publisher: EventPublisher, batch_size: int = 500,
                 max_message_bytes: int = MESSAGE_BYTES) -> None:
        self._pool = pool
        self._publisher = publisher
        self._batch_size = batch_size
        self._max_message_bytes = max_message_bytes

    async def run(self, stop: asyncio.Event, idle_wait: float = 0.1) -> None:
        while not stop.is_set():
            try:
                # Kafka or Postgres away: backed off, the rows kept (servicekit.retry).
                published = await persistently("outbox", self.publish_batch, stop=stop, waits=WAITS)
            except Exception:
                return  # stopped while waiting: the rows are there for the next start
            if published < self._batch_size:
                await pause(stop, idle_wait)

    async def publish_batch(self) -> int:
        """Messages published (or set aside), up to about a batch's worth: single rows and
        bundles in their order, a bundle's messages read only once it is reached (an
        import's may hold thousands)."""
        async with self._pool.acquire() as connection, connection.transaction():
            if not await connection.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext('outbox:' || current_schema()))"
            ):
                return 0
            rows = await connection.fetch(
                "SELECT id, topic, key, value, headers, messages IS NOT NULL AS bundled FROM outbox"
                " ORDER BY id LIMIT $1",
                self._batch_size,
            )
            messages, taken = [], []
            for row in rows:
                if row["bundled"]:
                    data = await connection.fetchval("SELECT messages FROM outbox WHERE id = $1", row["id"])
                    messages += [(row["id"], _message(row, key, value)) for key, value in unbundle(data)]
                else:
                    messages.append((row["id"], _message(row, row["key"], row["value"])))
                taken.append(row["id"])
                if len(messages) >= self._batch_size:
                    break
            if not taken:
                return 0
            refused = await self._publish(messages)
            if refused:
                await _set_aside(connection, refused)
            # Kafka keeps what was published; kept here too, the rows (and a million-contact
            # import's bundles) would only grow the table.
            await connection.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", taken)
            return len(messages)

    async def _publish(self, messages: list[tuple[int, Message]]) -> list[tuple[int, Message, str]]:
        """Publishes the messages in order; returns those too large to publish, with why.
        Any other failure raises: the batch is tried again."""
        refused, sendable = [], []
        for row_id, message in messages:
            size = message_size(message)
            if size > self._max_message_bytes:
                refused.append((row_id, message, f"{size:,} bytes, over the {self._max_message_bytes:,} a message may have"))
            else:
                sendable.append((row_id, message))
        delivered = await self._publisher.send_many([message for _, message in sendable])
        batches = list(dict.fromkeys(delivered))  # a future per record batch
        outcomes = dict(zip(batches, await asyncio.gather(*batches, return_exceptions=True), strict=True))
        again = []
        for (row_id, message), batch in zip(sendable, delivered, strict=True):
            outcome = outcomes[batch]
            if isinstance(outcome, TOO_LARGE):
                again.append((row_id, message))  # refused by the producer or the broker, maybe with smaller ones of its batch
            elif isinstance(outcome, BaseException):
                raise outcome
        for row_id, message in again:  # alone, so that only what is too large by itself is set aside
            try:
                await (await self._publisher.send(message))
            except TOO_LARGE as error:
                refused.append((row_id, message, repr(error)))
        return refused


async def _set_aside(connection: asyncpg.Connection, refused: list[tuple[int, Message, str]]) -> None:
    """Keeps what could not be published, with the error, where an operator can find it."""
    await connection.executemany(
        "INSERT INTO outbox_rejected (outbox_id, topic, key, value, headers, error) VALUES ($1, $2, $3, $4, $5, $6)",
        [(row_id, m.topic, m.key, m.value, _stored(m.headers), error) for row_id, m, error in refused],
    )
    for row_id, message, error in refused:
        log.error("outbox_message_rejected", outbox_id=row_id, topic=message.topic, key=message.key[:100].decode(errors="replace"),
                  bytes=message_size(message), error=error[:500])
        REJECTED.labels(message.topic).inc()


def _message(row, key: bytes, value: bytes | None) -> Message:
    return Message(row["topic"], key, value, [(k, v.encode()) for k, v in row["headers"]])
