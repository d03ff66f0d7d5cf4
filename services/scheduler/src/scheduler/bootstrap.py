"""Wires the scheduler together: health endpoint, consumer loop, due-poller, outbox relay."""

import asyncio
from pathlib import Path

from aiohttp import web

from contracts import topics
from scheduler import handlers
from scheduler.adapters.postgres import SendStore
from scheduler.settings import Settings
from servicekit import resources
from servicekit.http import health_route, problem_middleware
from servicekit.kafka import ConsumerLoop, Subscription, Topics
from servicekit.outbox import OutboxRelay

STORE = web.AppKey("store", SendStore)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[problem_middleware({})])
    app.cleanup_ctx.append(
        resources.postgres(settings, "scheduler", Path(__file__).parent / "migrations", with_outbox=True)
    )
    app.cleanup_ctx.append(resources.kafka_publisher(settings))

    async def store(app: web.Application):
        app[STORE] = SendStore(app[resources.POOL])
        yield

    async def lag() -> dict:
        return {"lag_seconds": round(await app[STORE].lag_seconds(), 3), "in_flight": await app[STORE].in_flight()}

    app.cleanup_ctx.append(store)
    app.add_routes(health_route(lag))
    return app


def background(app: web.Application, settings: Settings):
    def tasks(stop: asyncio.Event):
        store, publisher = app[STORE], app[resources.PUBLISHER]

        def on(handler):
            async def handle(event):
                await handler(event, store)

            return handle

        subscription = Subscription(
            "scheduler",
            {
                topics.CAMPAIGN_ACTIVATED: on(handlers.record_activation),
                topics.SEGMENT_EVALUATED: on(handlers.record_recipients),
                topics.CAMPAIGN_STATUS: on(handlers.follow_campaign_status),
            },
            batch_handlers={topics.EMAIL_STATUS: on(handlers.record_outcomes)},
            # Batches of a run are independent (see SendStore.locked): store a few at once.
            concurrency={topics.SEGMENT_EVALUATED: settings.batch_concurrency},
        )
        loop = ConsumerLoop(settings.kafka_bootstrap_servers, Topics(settings.kafka_topic_prefix), subscription, publisher)
        due = handlers.DueSends(store, publisher, settings.due_batch_size, settings.due_window,
                                settings.answer_timeout_seconds)
        return [
            loop.run(stop),
            due.run(stop, settings.due_poll_seconds, settings.due_workers),
            OutboxRelay(app[resources.POOL], publisher).run(stop),
        ]

    return tasks
