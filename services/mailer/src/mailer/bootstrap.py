"""Wires the mailer together: health endpoint, SMTP pool, consumer loops, outbox relay."""

import asyncio
from pathlib import Path

from aiohttp import web

from contracts import topics
from mailer import handlers
from mailer.adapters.postgres import CampaignStateStore, ConsentCache, Ledger
from mailer.adapters.smtp import SmtpPool
from mailer.campaigns import CampaignStates
from mailer.domain import RetryPolicy
from mailer.limits import SendingLimits
from mailer.settings import Settings
from servicekit import resources
from servicekit.http import health_route, problem_middleware
from servicekit.kafka import ConsumerLoop, Subscription, Topics
from servicekit.outbox import OutboxRelay

LEDGER = web.AppKey("ledger", Ledger)
SMTP = web.AppKey("smtp", SmtpPool)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[problem_middleware({})])
    app.cleanup_ctx.append(
        resources.postgres(settings, "mailer", Path(__file__).parent / "migrations", with_outbox=True)
    )
    app.cleanup_ctx.append(resources.kafka_publisher(settings))

    async def delivery(app: web.Application):
        app[LEDGER] = Ledger(app[resources.POOL])
        app[SMTP] = SmtpPool(settings)
        yield
        await app[SMTP].close()

    async def counts() -> dict:
        return {"resent_after_crash": await app[LEDGER].resent_after_crash()}

    app.cleanup_ctx.append(delivery)
    app.add_routes(health_route(counts))
    return app


def background(app: web.Application, settings: Settings):
    def tasks(stop: asyncio.Event):
        pool, publisher = app[resources.POOL], app[resources.PUBLISHER]
        consent = ConsentCache(pool)
        states, campaigns = CampaignStateStore(pool), CampaignStates()
        delivery = handlers.Delivery(
            app[LEDGER], consent, app[SMTP],
            SendingLimits(settings.send_rate_per_second, settings.domain_rate_per_second, settings.domain_concurrency),
            RetryPolicy(settings.smtp_retry_initial_seconds, settings.smtp_retry_max_seconds,
                        settings.smtp_retry_lifetime_seconds),
            settings,
            campaigns,
        )

        async def on_send_due(events):
            await handlers.deliver(events, delivery)

        async def on_contact_changed(events):
            await handlers.remember_consent(events, consent)

        async def on_campaign(event):
            await handlers.follow_campaign(event, states, campaigns)

        names = Topics(settings.kafka_topic_prefix)
        # A group of its own for consent: the cache reads contact.changed from its start (compacted)
        # without waiting behind a long send.due backlog.
        # A chunk at a time: a stop or a rebalance waits for one chunk, not a whole fetch.
        sends = Subscription("mailer", batch_handlers={topics.SEND_DUE: on_send_due},
                             chunks={topics.SEND_DUE: settings.delivery_chunk})
        # An empty cache (a new or lost database) is rebuilt from the topic's start. A full one
        # is never replayed: an old opt-in read again could briefly undo an unsubscribe.
        consents = Subscription("mailer-consent", batch_handlers={topics.CONTACT_CHANGED: on_contact_changed},
                                from_start_if=consent.is_empty)
        # A third group for the campaigns' states, so that a pause is heard at once, never
        # behind a backlog of sends or of consent changes.
        followed = Subscription("mailer-campaigns", {topics.CAMPAIGN_STATUS: on_campaign,
                                                     topics.CAMPAIGN_ACTIVATED: on_campaign})
        return [
            ConsumerLoop(settings.kafka_bootstrap_servers, names, sends, publisher).run(stop),
            ConsumerLoop(settings.kafka_bootstrap_servers, names, consents, publisher).run(stop),
            ConsumerLoop(settings.kafka_bootstrap_servers, names, followed, publisher).run(stop),
            handlers.keep_campaign_states(states, campaigns, stop),
            OutboxRelay(pool, publisher).run(stop),
        ]

    return tasks
