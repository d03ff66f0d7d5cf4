from uuid import uuid4

from contracts.enums import DeliveryStatus
from contracts.events import Recipient
from mailer.campaigns import CampaignStates
from mailer.domain import CampaignState, Consent, newer_consent, stopped_by


def recipient(opted_in: bool | None, seq: int | None) -> Recipient:
    return Recipient(contact_id=uuid4(), email="a@example.com", marketing_opt_in=opted_in, change_seq=seq)


def test_the_newer_of_the_cache_and_the_evaluation_decides_consent():
    assert newer_consent(None, recipient(True, 0)) == Consent(True, change_seq=0), "a fresh import needs no cache"
    assert newer_consent(Consent(False, change_seq=7), recipient(True, 3)).allows_marketing is False, \
        "an unsubscribe after the evaluation wins"
    assert newer_consent(Consent(False, change_seq=3), recipient(True, 7)).allows_marketing is True, \
        "an opt-in after the cached opt-out wins"
    assert newer_consent(Consent(True, change_seq=5), recipient(False, 5)).allows_marketing is True, "a tie: the cache"
    assert newer_consent(Consent(True, deleted=True, change_seq=2**63 - 1), recipient(True, 9)).allows_marketing is False
    assert newer_consent(Consent(True), recipient(False, 0)).allows_marketing is False, "an unversioned cache is oldest"


def test_consent_is_unknown_only_when_neither_source_knows_it():
    assert newer_consent(None, recipient(None, None)) is None
    cached = Consent(True, change_seq=1)
    assert newer_consent(cached, recipient(None, None)) is cached


def test_a_paused_campaign_holds_its_sends_and_a_completed_one_cancels_them():
    assert stopped_by(CampaignState.ACTIVE) is None
    assert stopped_by(CampaignState.PAUSED).status is DeliveryStatus.HELD
    assert stopped_by(CampaignState.COMPLETED).status is DeliveryStatus.CANCELLED


def test_an_older_state_never_replaces_a_newer_one_and_completed_is_final():
    states, campaign = CampaignStates(), uuid4()
    assert states.state_of(campaign) is CampaignState.ACTIVE, "not heard of: its sends come from an active run"
    states.learn(campaign, CampaignState.PAUSED, 3)
    states.learn(campaign, CampaignState.ACTIVE, 2)  # the activation, arriving late
    assert states.state_of(campaign) is CampaignState.PAUSED
    states.learn(campaign, CampaignState.ACTIVE, 4)
    assert states.state_of(campaign) is CampaignState.ACTIVE
    states.learn(campaign, CampaignState.COMPLETED, 6)
    states.learn(campaign, CampaignState.ACTIVE, 7)
    assert states.state_of(campaign) is CampaignState.COMPLETED
