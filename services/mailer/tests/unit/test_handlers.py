"""The mailer's other handlers on fakes: consent remembered, campaigns' states followed
and kept fresh, what /healthz adds; and the wiring binds every handler by name."""

import asyncio
from datetime import UTC, date, datetime, time
from uuid import uuid4

import pytest

from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import CampaignActivated, CampaignStatusChanged, ContactChanged
from contracts.steps import EmailContent, SendEmailStep
from mailer import bootstrap, handlers
from mailer.domain import CampaignState
from mailer.pace import SentPace
from mailer.settings import Settings
from servicekit.wiring import check

from .fakes import Mailer, sends


def status(campaign_id, new: CampaignStatus, seq: int | None, previous=CampaignStatus.ACTIVE):
    return CampaignStatusChanged(campaign_id=campaign_id, status=new, previous=previous, status_seq=seq)


def activation(campaign_id, seq: int | None) -> CampaignActivated:
    now = datetime.now(UTC)
    return CampaignActivated(
        campaign_id=campaign_id, run_id=uuid4(), segment_id=uuid4(),
        steps=[SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="s", text="t"))],
        start_date=date(2026, 6, 1), start_time_of_day=time(9), timezone="UTC", start_at=now, activated_at=now,
        status_seq=seq)


async def test_consent_remembered_from_contact_changed_decides_the_next_sends():
    mailer = Mailer()
    batch = sends(2, change_seq=1)
    first, second = (s.recipient.contact_id for s in batch)
    await mailer.bound(handlers.remember_consent)([
        ContactChanged(contact_id=first, marketing_opt_in=False, change_seq=4),  # unsubscribed since evaluated
        ContactChanged(contact_id=second, marketing_opt_in=False, change_seq=0),  # older than the evaluation
    ])
    assert not await mailer.consent.is_empty()
    await mailer.bound(handlers.deliver)(batch)
    assert [mailer.ledger.status_of(s) for s in batch] == [DeliveryStatus.SKIPPED_NO_CONSENT, DeliveryStatus.SENT]


async def test_a_pause_is_stored_for_every_instance_and_known_here_at_once():
    mailer, campaign = Mailer(), uuid4()
    await mailer.bound(handlers.follow_campaign)(status(campaign, CampaignStatus.PAUSED, 3))
    assert mailer.campaign_store.follows == [(campaign, CampaignState.PAUSED, 3, True)]
    assert mailer.campaigns.state_of(campaign) is CampaignState.PAUSED
    await mailer.bound(handlers.follow_campaign)(status(campaign, CampaignStatus.COMPLETED, 4, CampaignStatus.PAUSED))
    assert mailer.campaigns.state_of(campaign) is CampaignState.COMPLETED


async def test_a_late_activation_never_undoes_a_newer_status_and_tells_only_of_a_new_campaign():
    mailer, paused, new = Mailer(), uuid4(), uuid4()
    follow = mailer.bound(handlers.follow_campaign)
    await follow(status(paused, CampaignStatus.PAUSED, 3))
    await follow(activation(paused, None))
    await follow(activation(new, 2))
    assert mailer.campaign_store.follows[1] == (paused, CampaignState.ACTIVE, None, False), "an activation is oldest"
    assert mailer.campaigns.state_of(paused) is CampaignState.PAUSED
    assert mailer.campaign_store.states[new] == (CampaignState.ACTIVE, 2)


async def test_a_state_the_store_refuses_is_not_learnt_and_a_draft_is_not_followed():
    mailer, campaign = Mailer(), uuid4()
    mailer.campaign_store.states[campaign] = (CampaignState.COMPLETED, 5)  # stored by another instance
    await mailer.bound(handlers.follow_campaign)(status(campaign, CampaignStatus.PAUSED, 9))
    assert mailer.campaigns.state_of(campaign) is CampaignState.ACTIVE, "not learnt: this instance reads it soon"
    await mailer.bound(handlers.follow_campaign)(status(uuid4(), CampaignStatus.DRAFT, 1))
    assert len(mailer.campaign_store.follows) == 1, "a draft has no sends to stop"


async def test_keeping_states_learns_what_every_instance_stored_and_outlasts_the_database_away():
    mailer, campaign = Mailer(), uuid4()
    store, stop = mailer.campaign_store, asyncio.Event()
    store.changes = [[(campaign, CampaignState.PAUSED, 3)], ConnectionRefusedError("away"),
                     [(campaign, CampaignState.ACTIVE, 2), (uuid4(), CampaignState.COMPLETED, 7)]]
    store.on_read = lambda: len(store.reads) == 3 and stop.set()
    task = mailer.bound(handlers.keep_campaign_states)
    await asyncio.wait_for(task(stop, every=0), timeout=1)
    assert store.reads[0] is None and store.reads[1] == store.reads[2] is not None, \
        "all at first, then from where the last good read ended"
    assert mailer.campaigns.state_of(campaign) is CampaignState.PAUSED, "the older state read later lost"


async def test_health_adds_the_sends_resent_after_a_crash_and_the_pace_of_the_last_minute():
    mailer, now = Mailer(), [1000.0]
    mailer.dependencies["pace"] = SentPace(clock=lambda: now[0])
    batch = sends(3)
    await mailer.ledger.claim(batch)  # ... and the mailer dies before the record
    health = mailer.bound(handlers.health_figures, skip=0)
    assert await health() == {"resent_after_crash": 0, "emails_per_second": 0.0}
    now[0] += 30
    await mailer.bound(handlers.deliver)(batch)
    assert await health() == {"resent_after_crash": 3, "emails_per_second": 0.1}, "3 sent in 30 s up"
    now[0] += 30
    await mailer.bound(handlers.deliver)(sends(2, without_first_name=frozenset({1}), subject="{{ first_name.title() }}"))
    assert (await health())["emails_per_second"] == 0.07, "4 sent in the last minute (one failed)"
    now[0] += 31
    assert (await health())["emails_per_second"] == 0.02, "the first 3 older than a minute"


def test_the_pace_counts_a_second_at_a_time_and_forgets_past_the_minute():
    now = [0.0]
    pace = SentPace(clock=lambda: now[0])
    assert pace.per_second() == 0.0
    pace.sent(5)
    pace.sent(0)
    now[0] = 0.5
    pace.sent(5)
    assert pace.per_second() == 10.0, "10 in the first second of the mailer's life"
    now[0] = 10.0
    pace.sent(40)
    assert pace.per_second() == 5.0, "50 in 10 s"
    now[0] = 65.0
    assert pace.per_second() == round(40 / 60, 2), "the first second is past the minute"
    now[0] = 200.0
    assert pace.per_second() == 0.0


async def test_every_handler_task_and_the_health_check_find_their_adapters_by_name():
    settings = Settings(tracking_secret="unit-test-secret")
    async with bootstrap.adapters(settings, object(), None) as made:  # nothing is opened until used
        dependencies = {"settings": settings, "pool": object(), "publisher": None, "stop": asyncio.Event(), **made}
        check(bootstrap.SERVICE, dependencies)
        assert dependencies[bootstrap.SERVICE.groups[1].from_start_if] == made["consent"].is_empty
    assert [group.name for group in bootstrap.SERVICE.groups] == ["mailer", "mailer-consent", "mailer-campaigns",
                                                                    "mailer-tests"]


def test_the_public_default_tracking_secret_is_refused_outside_development(monkeypatch):
    monkeypatch.delenv("TRACKING_SECRET", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    with pytest.raises(ValueError, match="TRACKING_SECRET"):
        Settings()
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert Settings().tracking_secret == "change-me"
