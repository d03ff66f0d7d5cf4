from uuid import uuid4

from campaign_api.domain import StepStats, campaign_stats
from contracts.enums import CampaignStatus

STEPS = [StepStats(step_index=0, sent=6, failed=1, skipped_no_consent=1, deferred=2, opens=3, clicks=1),
         StepStats(step_index=1, sent=2, deferred=1)]


def test_a_running_campaign_counts_its_deferred_sends_and_cancels_nothing():
    stats = campaign_stats(uuid4(), CampaignStatus.ACTIVE, 10, 20, STEPS)
    assert (stats.sent, stats.failed, stats.deferred, stats.cancelled) == (8, 1, 3, 0)
    assert (stats.open_rate, stats.click_to_open_rate, stats.failure_rate) == (0.375, 0.3333, 0.1111)


def test_a_completed_campaign_counts_its_deferred_sends_as_cancelled_not_twice():
    stats = campaign_stats(uuid4(), CampaignStatus.COMPLETED, 10, 20, STEPS)
    # 20 scheduled, 10 reached a final state: the other 10 (3 of them deferred) will never be made.
    assert (stats.sent, stats.deferred, stats.cancelled) == (8, 0, 10)
    assert [step.deferred for step in stats.steps] == [0, 0]
    assert stats.sent + stats.failed + stats.skipped_no_consent + stats.deferred + stats.cancelled == stats.scheduled


def test_before_scheduling_there_is_nothing_to_cancel():
    stats = campaign_stats(uuid4(), CampaignStatus.COMPLETED, None, None, [])
    assert (stats.sent, stats.cancelled, stats.open_rate) == (0, 0, None)


def test_every_scheduled_send_is_somewhere_at_any_moment():
    steps = [StepStats(step_index=0, sent=5, failed=1, skipped_no_consent=1, deferred=1, held=2, cancelled=0),
             StepStats(step_index=2, sent=3, held=1)]
    for status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.COMPLETED):
        stats = campaign_stats(uuid4(), status, 10, 20, steps)
        parts = (stats.sent, stats.failed, stats.skipped_no_consent, stats.cancelled, stats.deferred, stats.held,
                 stats.not_yet_sent)
        assert sum(parts) == stats.scheduled == 20, (status, parts)
    paused = campaign_stats(uuid4(), CampaignStatus.PAUSED, 10, 20, steps)
    assert (paused.held, paused.not_yet_sent, paused.cancelled) == (3, 6, 0)
    completed = campaign_stats(uuid4(), CampaignStatus.COMPLETED, 10, 20, steps)
    assert (completed.held, completed.deferred, completed.not_yet_sent, completed.cancelled) == (0, 0, 0, 10)
    assert [step.cancelled for step in completed.steps] == [3, 7]


def test_before_scheduling_nothing_is_known_to_be_unsent():
    assert campaign_stats(uuid4(), CampaignStatus.ACTIVE, None, None, []).not_yet_sent is None
