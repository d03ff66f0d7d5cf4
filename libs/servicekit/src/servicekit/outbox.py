"""The transactional outbox: `add` in the transaction of the change, `OutboxRelay` publishes.

One relay publishes at a time per schema (a transaction-scoped advisory lock), so events
leave in the order they were written, whichever instance's relay is running. While Kafka
is down the batch's transaction rolls back and is tried again; requests keep succeeding.
"""

import asyncio

import asyncpg
import structlog

from contracts.codec import Message, encode, encode_headers
from contracts.events import Event
from servicekit.kafka import EventPublisher, correlation_id

log = structlog.get_logger()


async def add(connection: asyncpg.Connection, *events: Event) -> None:
    messages = [encode(event, correlation_id.get()) for event in events]
    await connection.executemany(
        "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4)",
        [(m.topic, m.key, m.value, _stored(m.headers)) for m in messages],
    )


def headers_for(topic: str) -> list[list[str]]:
    """The headers `add` stores, for SQL that writes outbox rows by the thousand itself."""
    return _stored(encode_headers(topic, correlation_id.get()))


def _stored(headers: list[tuple[str, bytes]]) -> list[list[str]]:
    return [[key, value.decode()] for key, value in headers]


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, publisher: EventPublisher, batch_size: int = 500) -> None:
        self._pool = pool
        self._publisher = publisher
        self._batch_size = batch_size

    async def run(self, stop: asyncio.Event, idle_wait: float = 0.1) -> None:
        failures = 0
        while not stop.is_set():
            try:
                published = await self.publish_batch()
                failures = 0
            except Exception as error:  # Kafka or Postgres away: back off, keep the rows
                failures += 1
                published = 0
                log.warning("outbox_publish_failed", error=repr(error), failures=failures)
            if published < self._batch_size:
                wait = idle_wait if failures == 0 else min(0.5 * 2**failures, 10.0)
                try:
                    await asyncio.wait_for(stop.wait(), wait)
                except TimeoutError:
                    pass

    async def publish_batch(self) -> int:
        async with self._pool.acquire() as connection, connection.transaction():
            if not await connection.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext('outbox:' || current_schema()))"
            ):
                return 0
            rows = await connection.fetch(
                "SELECT id, topic, key, value, headers FROM outbox"
                " WHERE published_at IS NULL ORDER BY id LIMIT $1",
                self._batch_size,
            )
            if not rows:
                return 0
            await self._publisher.send_all(
                Message(row["topic"], row["key"], row["value"], [(k, v.encode()) for k, v in row["headers"]])
                for row in rows
            )
            await connection.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
            return len(rows)
