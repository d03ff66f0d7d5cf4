"""Wires segment-svc together: the app, its repositories, its consumer and its relay."""

import asyncio
from pathlib import Path

from aiohttp import web

from contracts import topics
from segment_svc import handlers
from segment_svc.adapters.imports import ContactImports
from segment_svc.adapters.postgres import ContactRepository, EngagementHistory, Evaluations, SegmentRepository
from segment_svc.http import CONTACTS, ERRORS, HISTORY, IMPORT_BATCH, IMPORTS, SEGMENTS, routes
from segment_svc.settings import Settings
from servicekit import resources
from servicekit.http import health_route, problem_middleware
from servicekit.kafka import ConsumerLoop, Subscription, Topics
from servicekit.outbox import OutboxRelay


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[problem_middleware(ERRORS)])
    app.cleanup_ctx.append(
        resources.postgres(settings, "segment", Path(__file__).parent / "migrations", with_outbox=True)
    )
    app.cleanup_ctx.append(resources.kafka_publisher(settings))

    async def repositories(app: web.Application):
        app[CONTACTS] = ContactRepository(app[resources.POOL])
        app[SEGMENTS] = SegmentRepository(app[resources.POOL])
        app[IMPORTS] = ContactImports(app[resources.POOL])
        app[HISTORY] = EngagementHistory(app[resources.POOL])
        yield

    app[IMPORT_BATCH] = settings.import_batch_size
    app.cleanup_ctx.append(repositories)
    app.add_routes(routes)
    app.add_routes(health_route())
    return app


def background(app: web.Application, settings: Settings):
    """The consumer loop and the outbox relay, started once the app is set up."""

    def tasks(stop: asyncio.Event):
        pool, publisher = app[resources.POOL], app[resources.PUBLISHER]
        evaluations = Evaluations(pool)

        async def on_activated(event):
            await handlers.evaluate_segment(
                event, app[SEGMENTS], evaluations, publisher, settings.evaluation_batch_size, app[HISTORY],
                message_bytes=settings.kafka_message_bytes,
            )

        async def on_upserted(event):
            await handlers.upsert_contact(event, app[CONTACTS])

        async def on_engagement(event):
            await handlers.remember_engagement(event, app[CONTACTS], app[HISTORY])

        subscription = Subscription(
            "segment-svc",
            {topics.CAMPAIGN_ACTIVATED: on_activated, topics.CONTACT_UPSERTED: on_upserted,
             topics.EMAIL_ENGAGEMENT: on_engagement},
        )
        loop = ConsumerLoop(settings.kafka_bootstrap_servers, Topics(settings.kafka_topic_prefix), subscription, publisher)
        relay = OutboxRelay(pool, publisher, max_message_bytes=settings.kafka_message_bytes)
        return [loop.run(stop), relay.run(stop)]

    return tasks
