"""The scheduler declared: its adapters, what it consumes, its due-poller and /healthz."""

from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from contracts import topics
from scheduler import handlers
from scheduler.adapters.postgres import Runs, Sends, unit_of_work
from scheduler.settings import Settings
from servicekit.kafka import EventPublisher
from servicekit.wiring import Consume, Group, Service


@asynccontextmanager
async def adapters(settings: Settings, pool: asyncpg.Pool, publisher: EventPublisher | None):
    # `sends` and `runs` on the pool: statements that commit on their own (the poller's).
    yield {"uow": unit_of_work(pool), "sends": Sends(pool), "runs": Runs(pool)}


SERVICE = Service(
    name="scheduler",
    schema="scheduler",
    migrations=Path(__file__).parent / "migrations",
    adapters=adapters,
    groups=(Group("scheduler", (
        Consume(topics.CAMPAIGN_ACTIVATED, handlers.record_activation),
        # Batches of a run are independent (they share the run's lock): store a few at once.
        Consume(topics.SEGMENT_EVALUATED, handlers.record_recipients, concurrency="batch_concurrency"),
        Consume(topics.CAMPAIGN_STATUS, handlers.follow_campaign_status),
        Consume(topics.EMAIL_STATUS, handlers.record_outcomes, batch=True),
    )),),
    tasks=(handlers.emit_due_sends,),
    health=handlers.report_lag,
    outbox=True,
)
