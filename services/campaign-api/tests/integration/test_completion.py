"""The handlers on the real PostgreSQL: completion of a run, the counters, the row lock
and the outbox."""

import asyncio
from datetime import date, time
from types import SimpleNamespace
from uuid import uuid4

import pytest

from campaign_api import handlers
from campaign_api.adapters.postgres import (
    CampaignRepository,
    CampaignTransaction,
    RunRepository,
    StepCounters,
)
from campaign_api.domain import CampaignDraft, InvalidTransition
from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import CampaignScheduled, EmailStatus
from contracts.steps import EmailContent
from servicekit.uow import UnitOfWork

pytestmark = pytest.mark.integration


class SegmentsOnly:
    """segment-svc knows every segment; no campaign here has a flow, so flow-engine is never asked."""

    async def require_segment(self, segment_id):
        return None

    async def flow_steps(self, flow_id):
        raise AssertionError("no flow to read")


@pytest.fixture
async def api(service_pool):
    pool = await service_pool("campaign_api", "campaign_api")
    return SimpleNamespace(pool=pool, uow=UnitOfWork(pool, CampaignTransaction), campaigns=CampaignRepository(pool),
                           runs=RunRepository(pool), counters=StepCounters(pool), upstreams=SegmentsOnly())


async def a_draft(api):
    draft = CampaignDraft(
        name="c", segment_id=uuid4(), content=EmailContent(subject="s", text="t"),
        start_date=date(2026, 1, 1), start_time_of_day=time(9),
    )
    return await handlers.create_campaign(draft, api.uow, api.upstreams)


async def change(api, campaign_id, status):
    return await handlers.change_status(campaign_id, status, api.uow, api.campaigns, api.upstreams)


async def active_campaign(api):
    return await change(api, (await a_draft(api)).id, CampaignStatus.ACTIVE)


async def scheduled(api, campaign, sends: int) -> None:
    await handlers.record_scheduled(CampaignScheduled(campaign_id=campaign.id, run_id=campaign.run_id,
                                                      recipients=sends, sends=sends), api.uow)


async def status_of(api, campaign):
    return (await api.campaigns.get(campaign.id)).status


async def stats(api, campaign):
    return await handlers.report_stats(campaign.id, api.campaigns, api.runs, api.counters)


def outcome(campaign, status=DeliveryStatus.SENT, send_id=None, attempt=1) -> EmailStatus:
    return EmailStatus(send_id=send_id or uuid4(), campaign_id=campaign.id, run_id=campaign.run_id, step_index=0,
                       contact_id=uuid4(), status=status, attempt=attempt)


async def test_a_run_whose_sends_all_finish_completes_once_and_redeliveries_count_once(api):
    campaign = await active_campaign(api)
    await scheduled(api, campaign, 2)
    first = outcome(campaign)
    await handlers.record_outcomes([first], api.uow)
    await handlers.record_outcomes([first], api.uow)  # redelivered: still one of two
    assert await status_of(api, campaign) is CampaignStatus.ACTIVE
    deferred = outcome(campaign, DeliveryStatus.DEFERRED)
    await handlers.record_outcomes([deferred], api.uow)
    assert await status_of(api, campaign) is CampaignStatus.ACTIVE
    await handlers.record_outcomes([outcome(campaign, DeliveryStatus.SENT, deferred.send_id, attempt=2)], api.uow)
    assert await status_of(api, campaign) is CampaignStatus.COMPLETED
    figures = await stats(api, campaign)
    assert (figures.sent, figures.deferred, figures.scheduled) == (2, 0, 2)


async def test_a_segment_that_matched_nobody_completes_the_campaign(api):
    campaign = await active_campaign(api)
    await scheduled(api, campaign, 0)
    assert await status_of(api, campaign) is CampaignStatus.COMPLETED


async def test_sends_that_finish_while_paused_complete_the_campaign_on_resume(api):
    campaign = await active_campaign(api)
    await scheduled(api, campaign, 1)
    await change(api, campaign.id, CampaignStatus.PAUSED)
    await handlers.record_outcomes([outcome(campaign)], api.uow)  # the mail in flight when the pause came
    assert await status_of(api, campaign) is CampaignStatus.PAUSED
    resumed = await change(api, campaign.id, CampaignStatus.ACTIVE)
    assert resumed.status is CampaignStatus.COMPLETED
    assert [h.status for h in await api.campaigns.history(campaign.id)] == [
        "draft", "active", "paused", "active", "completed"]


async def test_a_batch_of_outcomes_counts_each_send_once_by_its_latest_news(api):
    campaign = await active_campaign(api)
    await scheduled(api, campaign, 4)
    retried, failed, skipped, later = uuid4(), uuid4(), uuid4(), uuid4()
    await handlers.record_outcomes([outcome(campaign, DeliveryStatus.DEFERRED, later)], api.uow)
    first = [
        outcome(campaign, DeliveryStatus.DEFERRED, retried),
        outcome(campaign, DeliveryStatus.SENT, retried, attempt=2),  # the same send, further on
        outcome(campaign, DeliveryStatus.FAILED, failed),
        outcome(campaign, DeliveryStatus.SKIPPED_NO_CONSENT, skipped),
        outcome(campaign, DeliveryStatus.SKIPPED_NO_CONSENT, skipped),  # redelivered within the batch
    ]
    await handlers.record_outcomes(first, api.uow)
    await handlers.record_outcomes(first, api.uow)  # the whole batch redelivered
    figures = await stats(api, campaign)
    assert (figures.sent, figures.failed, figures.skipped_no_consent, figures.deferred) == (1, 1, 1, 1)
    assert await status_of(api, campaign) is CampaignStatus.ACTIVE

    await handlers.record_outcomes([outcome(campaign, DeliveryStatus.SENT, later, attempt=2)], api.uow)
    figures = await stats(api, campaign)
    assert (figures.sent, figures.deferred, figures.open_rate) == (2, 0, 0.0)
    assert await status_of(api, campaign) is CampaignStatus.COMPLETED


async def test_concurrent_activations_make_one_run_and_one_campaign_activated(api):
    draft = await a_draft(api)
    answers = await asyncio.gather(*[change(api, draft.id, CampaignStatus.ACTIVE) for _ in range(8)],
                                   return_exceptions=True)
    assert sum(1 for a in answers if not isinstance(a, Exception)) == 1
    assert all(isinstance(a, InvalidTransition) for a in answers if isinstance(a, Exception))
    assert await api.pool.fetchval("SELECT count(*) FROM runs WHERE campaign_id = $1", draft.id) == 1
    assert await api.pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'campaign.activated'") == 1
