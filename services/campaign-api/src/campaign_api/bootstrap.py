"""campaign-api declared: its adapters, the events it consumes, its routes and middlewares."""

from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg

from campaign_api import gateway, handlers, http
from campaign_api.adapters.passwords import Passwords
from campaign_api.adapters.postgres import (
    AccountRepository,
    CampaignRepository,
    CampaignTransaction,
    ContactHistory,
    Recipients,
    RunRepository,
    SessionRepository,
    StepCounters,
)
from campaign_api.adapters.upstream import Upstreams
from campaign_api.settings import Settings
from campaign_api.throttle import SignInThrottle
from contracts import topics
from servicekit.kafka import EventPublisher
from servicekit.uow import UnitOfWork
from servicekit.wiring import Consume, Group, Service


@asynccontextmanager
async def adapters(settings: Settings, pool: asyncpg.Pool, publisher: EventPublisher | None):
    """The one place campaign-api's adapters are made. The repositories on the pool are
    for reads; every change goes through `uow`."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=settings.upstream_timeout_seconds)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield {
            "uow": UnitOfWork(pool, CampaignTransaction),
            "campaigns": CampaignRepository(pool),
            "runs": RunRepository(pool),
            "counters": StepCounters(pool),
            "recipients": Recipients(pool),
            "contact_history": ContactHistory(pool),
            "accounts": AccountRepository(pool),
            "sessions": SessionRepository(pool),
            "passwords": Passwords(),
            "throttle": SignInThrottle(),
            "upstreams": Upstreams(session, settings.segment_svc_url, settings.flow_engine_url,
                                   settings.scheduler_url, settings.mailer_url),
        }


SERVICE = Service(
    name="campaign-api",
    schema="campaign_api",
    migrations=Path(__file__).parent / "migrations",
    adapters=adapters,
    groups=(Group("campaign-api", (
        Consume(topics.CAMPAIGN_SCHEDULED, handlers.record_scheduled),
        Consume(topics.EMAIL_STATUS, handlers.record_outcomes, batch=True),
    )),),
    routes=http.routes,
    errors=http.ERRORS,
    health=gateway.health,
    middlewares=gateway.middlewares,
    outbox=True,
)
