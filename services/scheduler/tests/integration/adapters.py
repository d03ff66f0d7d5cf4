"""The scheduler's adapters on a test's database, as bootstrap makes them, and the
due-poller's passes one at a time (the task runs them in a loop)."""

from dataclasses import dataclass, field

import asyncpg

from scheduler.adapters.postgres import Runs, Sends, unit_of_work
from scheduler.handlers import StepContents, emit_due, emit_overdue
from servicekit.kafka import EventPublisher


@dataclass
class Scheduler:
    pool: asyncpg.Pool

    def __post_init__(self) -> None:
        self.uow, self.sends, self.runs = unit_of_work(self.pool), Sends(self.pool), Runs(self.pool)

    def poller(self, publisher: EventPublisher, batch_size: int, window: int = 1_000_000,
               answer_timeout_seconds: float = 60.0) -> "Poller":
        return Poller(self, publisher, batch_size, window, answer_timeout_seconds)


@dataclass
class Poller:
    scheduler: Scheduler
    publisher: EventPublisher
    batch_size: int
    window: int
    answer_timeout_seconds: float
    contents: StepContents = field(init=False)

    def __post_init__(self) -> None:
        self.contents = StepContents(self.scheduler.runs)

    async def emit(self) -> int:
        s = self.scheduler
        return await emit_due(s.uow, s.sends, self.contents, self.publisher, self.batch_size, self.window)

    async def emit_overdue(self) -> int:
        return await emit_overdue(self.scheduler.sends, self.contents, self.publisher, self.answer_timeout_seconds,
                                  self.batch_size)
