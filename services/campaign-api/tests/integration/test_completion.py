"""Completion of a run, on the real PostgreSQL (the repository and its outbox)."""

from datetime import date, time
from uuid import uuid4

import pytest

from campaign_api.adapters.postgres import CampaignRepository
from campaign_api.domain import CampaignDraft
from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import CampaignScheduled, EmailStatus
from contracts.steps import EmailContent

pytestmark = pytest.mark.integration


@pytest.fixture
async def campaigns(service_pool):
    return CampaignRepository(await service_pool("campaign_api", "campaign_api"))


async def active_campaign(campaigns: CampaignRepository):
    draft = CampaignDraft(
        name="c", segment_id=uuid4(), content=EmailContent(subject="s", text="t"),
        start_date=date(2026, 1, 1), start_time_of_day=time(9),
    )
    created = await campaigns.add(draft, [])

    async def no_flow(campaign):
        return None

    return await campaigns.activate(created.id, no_flow)


def outcome(campaign, status=DeliveryStatus.SENT, send_id=None, attempt=1) -> EmailStatus:
    return EmailStatus(send_id=send_id or uuid4(), campaign_id=campaign.id, run_id=campaign.run_id, step_index=0,
                       contact_id=uuid4(), status=status, attempt=attempt)


async def test_a_run_whose_sends_all_finish_completes_once_and_redeliveries_count_once(campaigns):
    campaign = await active_campaign(campaigns)
    await campaigns.record_scheduled(CampaignScheduled(campaign_id=campaign.id, run_id=campaign.run_id,
                                                       recipients=2, sends=2))
    first = outcome(campaign)
    await campaigns.record_outcomes([first])
    await campaigns.record_outcomes([first])  # redelivered: still one of two
    assert (await campaigns.get(campaign.id)).status is CampaignStatus.ACTIVE
    deferred = outcome(campaign, DeliveryStatus.DEFERRED)
    await campaigns.record_outcomes([deferred])
    assert (await campaigns.get(campaign.id)).status is CampaignStatus.ACTIVE
    await campaigns.record_outcomes([outcome(campaign, DeliveryStatus.SENT, deferred.send_id, attempt=2)])
    assert (await campaigns.get(campaign.id)).status is CampaignStatus.COMPLETED
    stats = await campaigns.stats(campaign.id)
    assert (stats.sent, stats.deferred, stats.scheduled) == (2, 0, 2)


async def test_a_segment_that_matched_nobody_completes_the_campaign(campaigns):
    campaign = await active_campaign(campaigns)
    await campaigns.record_scheduled(CampaignScheduled(campaign_id=campaign.id, run_id=campaign.run_id,
                                                       recipients=0, sends=0))
    assert (await campaigns.get(campaign.id)).status is CampaignStatus.COMPLETED


async def test_sends_that_finish_while_paused_complete_the_campaign_on_resume(campaigns):
    campaign = await active_campaign(campaigns)
    await campaigns.record_scheduled(CampaignScheduled(campaign_id=campaign.id, run_id=campaign.run_id,
                                                       recipients=1, sends=1))
    await campaigns.change_status(campaign.id, CampaignStatus.PAUSED)
    await campaigns.record_outcomes([outcome(campaign)])  # the mail in flight when the pause came
    assert (await campaigns.get(campaign.id)).status is CampaignStatus.PAUSED
    resumed = await campaigns.change_status(campaign.id, CampaignStatus.ACTIVE)
    assert resumed.status is CampaignStatus.COMPLETED
    assert [h.status for h in await campaigns.history(campaign.id)] == [
        "draft", "active", "paused", "active", "completed"]


async def test_a_batch_of_outcomes_counts_each_send_once_by_its_latest_news(campaigns):
    campaign = await active_campaign(campaigns)
    await campaigns.record_scheduled(CampaignScheduled(campaign_id=campaign.id, run_id=campaign.run_id,
                                                       recipients=4, sends=4))
    retried, failed, skipped, later = uuid4(), uuid4(), uuid4(), uuid4()
    await campaigns.record_outcomes([outcome(campaign, DeliveryStatus.DEFERRED, later)])
    first = [
        outcome(campaign, DeliveryStatus.DEFERRED, retried),
        outcome(campaign, DeliveryStatus.SENT, retried, attempt=2),  # the same send, further on
        outcome(campaign, DeliveryStatus.FAILED, failed),
        outcome(campaign, DeliveryStatus.SKIPPED_NO_CONSENT, skipped),
        outcome(campaign, DeliveryStatus.SKIPPED_NO_CONSENT, skipped),  # redelivered within the batch
    ]
    await campaigns.record_outcomes(first)
    await campaigns.record_outcomes(first)  # the whole batch redelivered
    stats = await campaigns.stats(campaign.id)
    assert (stats.sent, stats.failed, stats.skipped_no_consent, stats.deferred) == (1, 1, 1, 1)
    assert (await campaigns.get(campaign.id)).status is CampaignStatus.ACTIVE

    await campaigns.record_outcomes([outcome(campaign, DeliveryStatus.SENT, later, attempt=2)])
    stats = await campaigns.stats(campaign.id)
    assert (stats.sent, stats.deferred, stats.open_rate) == (2, 0, 0.0)
    assert (await campaigns.get(campaign.id)).status is CampaignStatus.COMPLETED
