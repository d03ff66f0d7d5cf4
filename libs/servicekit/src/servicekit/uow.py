"""A small unit of work: one transaction on a pooled connection, optionally under
advisory locks, handing the service's repositories bound to that connection.

    uow = UnitOfWork(pool, SchedulerTransaction)
    async with uow(f"run:{run_id}") as tx:
        await tx.runs.save(run)
        await tx.emit(CampaignScheduled(...))   # the outbox, in the same transaction

Handlers see only the transaction type's attributes, so a unit test hands them the
in-memory `FakeUnitOfWork` (servicekit.testing) instead.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

import asyncpg

from contracts.codec import Message
from contracts.events import Event
from servicekit import outbox


class Transaction:
    """The base of a service's transaction: its connection and the outbox."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def emit(self, *events: Event | Message) -> None:
        """Publishes the events (or messages a codec function encoded) once, and only if,
        the transaction commits."""
        await outbox.add(self.connection, *events)


T = TypeVar("T", bound=Transaction)


class UnitOfWork(Generic[T]):
    def __init__(self, pool: asyncpg.Pool, transaction: Callable[[asyncpg.Connection], T]) -> None:
        self.pool = pool
        self._transaction = transaction

    @asynccontextmanager
    async def __call__(self, *locks: str, shared: bool = False) -> AsyncIterator[T]:
        """A transaction holding the advisory locks named (exclusive, or `shared`); they
        are the same for every instance of the service, and released at commit."""
        lock = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        async with self.pool.acquire() as connection, connection.transaction():
            for name in locks:
                await connection.execute(f"SELECT {lock}(hashtext($1))", name)
            yield self._transaction(connection)
