"""segment-svc declared as data: its adapters, what it consumes, its routes."""

from contextlib import asynccontextmanager
from pathlib import Path

from contracts import topics
from segment_svc import handlers, http
from segment_svc.adapters.imports import ContactImports
from segment_svc.adapters.postgres import (
    ContactRepository,
    EngagementHistory,
    Evaluations,
    SegmentRepository,
    SegmentTransaction,
)
from servicekit.uow import UnitOfWork
from servicekit.wiring import Consume, Group, Service


@asynccontextmanager
async def adapters(settings, pool, publisher):
    """The one place segment-svc's adapters are made; handlers take them by these names."""
    contacts, uow = ContactRepository(pool), UnitOfWork(pool, SegmentTransaction)
    yield {
        "contacts": contacts,
        "uow": uow,
        "audience": handlers.Audience(contacts, uow),
        "segments": SegmentRepository(pool),
        "evaluations": Evaluations(pool),
        "history": EngagementHistory(pool),
        "imports": ContactImports(pool),
    }


SERVICE = Service(
    name="segment-svc",
    schema="segment",
    migrations=Path(__file__).parent / "migrations",
    adapters=adapters,
    groups=(Group("segment-svc", (
        Consume(topics.CAMPAIGN_ACTIVATED, handlers.evaluate_segment),
        Consume(topics.CONTACT_UPSERTED, handlers.upsert_contact),
        Consume(topics.EMAIL_ENGAGEMENT, handlers.remember_engagement),
    )),),
    routes=http.routes,
    errors=http.ERRORS,
    outbox=True,
)
