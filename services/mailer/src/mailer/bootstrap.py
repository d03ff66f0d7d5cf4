"""The mailer declared: its adapters, made in one place, and what it consumes and runs."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from contracts import topics
from mailer import handlers
from mailer.adapters.postgres import CampaignStateStore, ConsentCache, unit_of_work
from mailer.adapters.smtp import SmtpPool
from mailer.campaigns import CampaignStates
from mailer.domain import RetryPolicy
from mailer.email_tests import EmailTestsInFlight
from mailer.limits import SendingLimits
from mailer.pace import SentPace
from mailer.server import SmtpTrouble
from mailer.settings import Settings
from servicekit.kafka import EventPublisher
from servicekit.wiring import Consume, Group, Service


@asynccontextmanager
async def adapters(settings: Settings, pool: asyncpg.Pool, publisher: EventPublisher | None) -> AsyncIterator[dict]:
    consent = ConsentCache(pool)
    smtp = SmtpPool(settings)
    try:
        yield {
            "uow": unit_of_work(pool),
            "consent": consent,
            "consent_is_empty": consent.is_empty,
            "campaign_store": CampaignStateStore(pool),
            "campaigns": CampaignStates(),
            "smtp": smtp,
            "limits": SendingLimits(settings.send_rate_per_second, settings.domain_rate_per_second,
                                    settings.domain_concurrency),
            "retry_policy": RetryPolicy(settings.smtp_retry_initial_seconds, settings.smtp_retry_max_seconds,
                                        settings.smtp_retry_lifetime_seconds),
            "trouble": SmtpTrouble(),
            "pace": SentPace(),
            "tests_in_flight": EmailTestsInFlight(),
        }
    finally:
        await smtp.close()


SERVICE = Service(
    name="mailer",
    schema="mailer",
    migrations=Path(__file__).parent / "migrations",
    adapters=adapters,
    groups=(
        # A chunk at a time: a stop or a rebalance waits for one chunk, not a whole fetch.
        Group("mailer", (Consume(topics.SEND_DUE, handlers.deliver, batch=True, chunk="delivery_chunk"),)),
        # A group of its own for consent: the cache reads contact.changed from its start
        # (compacted) without waiting behind a long send.due backlog. An empty cache (a new or
        # lost database) is rebuilt from the topic's start; a full one is never replayed: an
        # old opt-in read again could briefly undo an unsubscribe.
        Group("mailer-consent", (Consume(topics.CONTACT_CHANGED, handlers.remember_consent, batch=True),),
              from_start_if="consent_is_empty"),
        # A third group for the campaigns' states, so that a pause is heard at once, never
        # behind a backlog of sends or of consent changes.
        Group("mailer-campaigns", (Consume(topics.CAMPAIGN_STATUS, handlers.follow_campaign),
                                   Consume(topics.CAMPAIGN_ACTIVATED, handlers.follow_campaign))),
        # A fourth for the tests of an email step, so that a test is never behind a send.due
        # backlog (one partition: a test at a time, retried alone while SMTP is unusable).
        Group("mailer-tests", (Consume(topics.EMAIL_TEST, handlers.send_test),)),
    ),
    tasks=(handlers.keep_campaign_states,),
    health=handlers.health_figures,
    outbox=True,
)
