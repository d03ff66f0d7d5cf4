"""In-memory stand-ins for unit tests of handlers (never for integration tests)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from contracts.codec import Message, decode
from contracts.events import Event

T = TypeVar("T")


class FakeOutbox:
    """What a handler emitted, in order: `tx.emit` of a fake transaction."""

    def __init__(self) -> None:
        self.emitted: list[Event] = []

    async def emit(self, *events: Event | Message) -> None:
        # An encoded one is decoded as its consumers would read it.
        self.emitted.extend(event if isinstance(event, Event) else decode(event.topic, event.key, event.value)
                            for event in events)

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.emitted if isinstance(event, kind)]


class FakeUnitOfWork(Generic[T]):
    """Hands out one in-memory transaction; counts the units of work and the locks asked
    for. A handler that raises leaves what it wrote: unit tests assert the happy paths and
    the decisions, the integration tests the rollbacks."""

    def __init__(self, transaction: T) -> None:
        self.transaction = transaction
        self.locks: list[tuple[str, ...]] = []
        self.open = False  # True inside the unit of work: fakes of HTTP adapters can refuse calls then

    @asynccontextmanager
    async def __call__(self, *locks: str, shared: bool = False) -> AsyncIterator[T]:
        self.locks.append(locks)
        self.open = True
        try:
            yield self.transaction
        finally:
            self.open = False
