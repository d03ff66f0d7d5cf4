"""The scheduler's handlers on in-memory fakes: what each decides (the SQL that carries
it out is tested on PostgreSQL in tests/integration)."""

import asyncio
from datetime import datetime, timedelta
from uuid import uuid4

from contracts import topics
from contracts.codec import decode
from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import (
    CampaignActivated,
    CampaignScheduled,
    CampaignStatusChanged,
    EmailStatus,
    Recipient,
    SegmentEvaluated,
)
from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep
from scheduler import handlers
from scheduler.bootstrap import SERVICE, adapters
from scheduler.handlers import (
    StepContents,
    emit_due,
    emit_due_sends,
    emit_overdue,
    follow_campaign_status,
    record_activation,
    record_outcomes,
    record_recipients,
    report_lag,
)
from scheduler.settings import Settings
from servicekit.wiring import check

from .fakes import FakePublisher, Scheduler

EMAIL = SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="Hi {{ first_name }}", text="t"))
TWO_EMAILS = [EMAIL, WaitStep(type="WAIT", config=WaitConfig(days=1)), EMAIL]


def activation(scheduler: Scheduler, steps=(EMAIL,), start: datetime | None = None, **fields) -> CampaignActivated:
    """A run activated a minute ago (of the fake clock), starting then unless `start` says."""
    at = scheduler.tables.now() - timedelta(minutes=1)
    start = start or at
    return CampaignActivated(**{
        "campaign_id": uuid4(), "run_id": uuid4(), "segment_id": uuid4(), "steps": list(steps),
        "start_date": start.date(), "start_time_of_day": start.time().replace(microsecond=0), "timezone": "UTC",
        "start_at": start, "activated_at": at, **fields,
    })


def batch(run: CampaignActivated, batch_no: int, size: int, is_last: bool = False,
          recipients: list[Recipient] | None = None) -> SegmentEvaluated:
    recipients = recipients or [Recipient(contact_id=uuid4(), email=f"r{batch_no}-{i}@example.com")
                                for i in range(size)]
    return SegmentEvaluated(run_id=run.run_id, campaign_id=run.campaign_id, batch_no=batch_no,
                            recipients=recipients, is_last=is_last)


def status(run: CampaignActivated, new: CampaignStatus, seq: int | None) -> CampaignStatusChanged:
    return CampaignStatusChanged(campaign_id=run.campaign_id, run_id=run.run_id, status=new,
                                 previous=CampaignStatus.ACTIVE, status_seq=seq)


def outcome(send: dict, new: DeliveryStatus, **fields) -> EmailStatus:
    return EmailStatus(send_id=send["send_id"], campaign_id=send["campaign_id"], run_id=send["run_id"],
                       step_index=send["step_index"], contact_id=send["contact_id"], status=new,
                       attempt=send["attempt"], **fields)


async def scheduled(scheduler: Scheduler, recipients: int, **fields) -> CampaignActivated:
    run = activation(scheduler, **fields)
    await record_activation(run, scheduler.uow)
    await record_recipients(batch(run, 0, recipients, is_last=True), scheduler.uow)
    return run


def announcements(scheduler: Scheduler) -> list[tuple[int, int]]:
    return [(e.recipients, e.sends) for e in scheduler.tx.outbox.of(CampaignScheduled)]


async def emit(scheduler: Scheduler, publisher: FakePublisher, batch_size: int = 100, window: int = 1000) -> int:
    contents = StepContents(scheduler.runs)
    return await emit_due(scheduler.uow, scheduler.sends, contents, publisher, batch_size, window)


# Storing runs and recipients


async def test_activation_plans_the_recipients_that_waited_for_it_under_the_runs_lock_alone():
    scheduler = Scheduler()
    run = activation(scheduler, steps=TWO_EMAILS)
    await record_recipients(batch(run, 0, 3), scheduler.uow)
    assert scheduler.tables.sends == {}, "no run yet: the recipients wait"
    await record_activation(run, scheduler.uow)
    assert len(scheduler.tables.sends) == 6, "3 recipients x 2 emails"
    assert {s["step_index"] for s in scheduler.tables.sends.values()} == {0, 2}
    assert scheduler.tables.runs[run.run_id]["sends"] == 6
    assert all(row["planned"] for row in scheduler.tables.recipients.values())
    run_lock = (f"run:{run.run_id}",)
    assert scheduler.uow.modes == [(run_lock, True), (run_lock, False), ((), False)], "statistics after the commit"
    assert scheduler.tables.statistics_refreshed == 1, "after planning (a batch without its run plans nothing)"


async def test_statistics_are_refreshed_once_the_first_and_the_last_batch_are_committed():
    scheduler = Scheduler()
    run = activation(scheduler)
    await record_activation(run, scheduler.uow)
    assert scheduler.tables.statistics_refreshed == 0, "nothing planned yet"
    for batch_no in range(3):
        await record_recipients(batch(run, batch_no, 2, is_last=batch_no == 2), scheduler.uow)
    # The fake refuses a refresh in the unit of work that stored sends (it would hold back
    # their commit, and the first email with it).
    assert scheduler.tables.statistics_refreshed == 2, "after batch 0 and after the last"


async def test_a_second_email_waits_for_the_wait_step():
    scheduler = Scheduler()
    await scheduled(scheduler, 1, steps=TWO_EMAILS)
    first, second = sorted(scheduler.tables.sends.values(), key=lambda s: s["step_index"])
    assert second["due_at"] - first["due_at"] == timedelta(days=1)


async def test_a_batch_before_its_run_is_stored_unplanned_and_announces_nothing():
    scheduler = Scheduler()
    run = activation(scheduler)
    await record_recipients(batch(run, 0, 4, is_last=True), scheduler.uow)
    assert [row["planned"] for row in scheduler.tables.recipients.values()] == [False] * 4
    assert scheduler.tables.sends == {} and scheduler.tx.outbox.emitted == []
    await record_activation(run, scheduler.uow)
    assert announcements(scheduler) == [(4, 4)], "announced once the run came"


async def test_a_redelivered_batch_changes_nothing():
    scheduler = Scheduler()
    run = activation(scheduler)
    await record_activation(run, scheduler.uow)
    last = batch(run, 0, 5, is_last=True)
    await record_recipients(last, scheduler.uow)
    sends = dict(scheduler.tables.sends)
    await record_recipients(last, scheduler.uow)
    assert scheduler.tables.sends == sends and len(scheduler.tables.recipients) == 5
    assert announcements(scheduler) == [(5, 5)], "announced once"


async def test_the_run_is_announced_when_its_last_batch_and_all_before_it_are_stored():
    scheduler = Scheduler()
    run = activation(scheduler, steps=TWO_EMAILS)
    await record_activation(run, scheduler.uow)
    await record_recipients(batch(run, 2, 3, is_last=True), scheduler.uow)
    await record_recipients(batch(run, 0, 3), scheduler.uow)
    assert announcements(scheduler) == [], "batch 1 is missing"
    await record_recipients(batch(run, 1, 3), scheduler.uow)
    [announced] = scheduler.tx.outbox.of(CampaignScheduled)
    assert (announced.campaign_id, announced.run_id) == (run.campaign_id, run.run_id)
    assert (announced.recipients, announced.sends) == (9, 18)


async def test_a_batch_published_again_adds_only_the_recipients_the_run_lacks_and_announces_again():
    scheduler = Scheduler()
    run = activation(scheduler)
    await record_activation(run, scheduler.uow)
    first = batch(run, 0, 2, is_last=True)
    await record_recipients(first, scheduler.uow)
    joined = Recipient(contact_id=uuid4(), email="joined@example.com")
    again = batch(run, 0, 0, is_last=True, recipients=[*first.recipients, joined])  # a new event, the same number
    await record_recipients(again, scheduler.uow)
    assert len(scheduler.tables.sends) == 3
    assert announcements(scheduler) == [(2, 2), (3, 3)]
    await record_recipients(batch(run, 0, 0, is_last=True, recipients=first.recipients), scheduler.uow)
    assert announcements(scheduler) == [(2, 2), (3, 3)], "nothing added: not announced again"


# Campaign states


async def test_an_older_status_changes_nothing():
    scheduler = Scheduler()
    run = activation(scheduler, status_seq=2)
    await follow_campaign_status(status(run, CampaignStatus.PAUSED, 3), scheduler.uow)
    await follow_campaign_status(status(run, CampaignStatus.ACTIVE, 2), scheduler.uow)
    await record_activation(run, scheduler.uow)
    assert scheduler.tx.states.of(run.campaign_id) == "paused", "the pause is newer than both"
    await follow_campaign_status(status(run, CampaignStatus.ACTIVE, 4), scheduler.uow)
    assert scheduler.tx.states.of(run.campaign_id) == "active"


async def test_a_status_the_scheduler_does_not_follow_opens_no_transaction():
    scheduler = Scheduler()
    run = activation(scheduler)
    await follow_campaign_status(status(run, CampaignStatus.DRAFT, 5), scheduler.uow)
    assert scheduler.uow.locks == [] and scheduler.tables.states == {}


async def test_completing_cancels_what_is_pending_and_is_final():
    scheduler = Scheduler()
    run = await scheduled(scheduler, 4)
    await emit(scheduler, FakePublisher(), window=1)
    await follow_campaign_status(status(run, CampaignStatus.COMPLETED, 3), scheduler.uow)
    assert scheduler.tables.send_states() == {"emitted": 1, "cancelled": 3}, "in flight comes back from the mailer"
    await follow_campaign_status(status(run, CampaignStatus.ACTIVE, 9), scheduler.uow)
    assert scheduler.tx.states.of(run.campaign_id) == "completed"


# Outcomes


async def emitted(scheduler: Scheduler, recipients: int) -> list[dict]:
    await scheduled(scheduler, recipients)
    await emit(scheduler, FakePublisher())
    return [dict(send) for send in scheduler.tables.sends.values()]


async def test_a_deferred_send_is_due_again_at_its_retry_time_with_the_next_attempt():
    scheduler = Scheduler()
    [send] = await emitted(scheduler, 1)
    retry_at = scheduler.tables.now() + timedelta(minutes=5)
    deferral = outcome(send, DeliveryStatus.DEFERRED, smtp_code=451, retry_at=retry_at)
    await record_outcomes([deferral, deferral], scheduler.uow)  # twice in one batch: one statement, one retry
    await record_outcomes([deferral], scheduler.uow)  # redelivered
    stored = scheduler.tables.sends[send["send_id"]]
    assert (stored["state"], stored["attempt"], stored["due_at"]) == ("pending", 2, retry_at)


async def test_the_highest_attempt_of_a_send_in_one_batch_wins():
    scheduler = Scheduler()
    [send] = await emitted(scheduler, 1)
    later = scheduler.tables.now() + timedelta(minutes=9)
    old = outcome(send, DeliveryStatus.DEFERRED, retry_at=later)
    newer = outcome({**send, "attempt": 2}, DeliveryStatus.DEFERRED, retry_at=later)
    await record_outcomes([newer, old], scheduler.uow)
    assert scheduler.tables.sends[send["send_id"]]["attempt"] == 1, "attempt 2 is not the one in flight"


async def test_a_held_send_is_pending_again_at_the_same_attempt():
    scheduler = Scheduler()
    [send] = await emitted(scheduler, 1)
    await record_outcomes([outcome(send, DeliveryStatus.HELD)], scheduler.uow)
    stored = scheduler.tables.sends[send["send_id"]]
    assert (stored["state"], stored["attempt"], stored["due_at"]) == ("pending", 1, send["due_at"])


async def test_every_other_answer_ends_the_send():
    scheduler = Scheduler()
    sends = await emitted(scheduler, 4)
    answers = [DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED_NO_CONSENT,
               DeliveryStatus.CANCELLED]
    await record_outcomes([outcome(s, answer) for s, answer in zip(sends, answers, strict=True)], scheduler.uow)
    assert scheduler.tables.send_states() == {}, "finished sends are gone"


async def test_a_deferral_without_a_retry_time_changes_nothing():
    scheduler = Scheduler()
    [send] = await emitted(scheduler, 1)
    await record_outcomes([outcome(send, DeliveryStatus.DEFERRED)], scheduler.uow)
    assert scheduler.tables.send_states() == {"emitted": 1}
    assert len(scheduler.uow.locks) == 4, "two to schedule, one for statistics, one to emit: none for the answer"


# The due-poller


async def test_the_window_bounds_what_is_emitted_until_answers_come():
    scheduler, publisher = Scheduler(), FakePublisher()
    await scheduled(scheduler, 30)
    assert await emit(scheduler, publisher, window=10) == 10
    assert await emit(scheduler, publisher, window=10) == 0, "the window is full"
    answered = [s for s in scheduler.tables.sends.values() if s["state"] == "emitted"][:4]
    await record_outcomes([outcome(s, DeliveryStatus.SENT) for s in answered], scheduler.uow)
    assert await emit(scheduler, publisher, window=10) == 4
    assert scheduler.tables.send_states() == {"emitted": 10, "pending": 16}
    assert len(publisher.messages) == 14
    assert scheduler.uow.locks[-1] == (handlers.DUE_WINDOW_LOCK,)


async def test_each_emitted_send_is_its_send_due_with_the_steps_content():
    scheduler, publisher = Scheduler(), FakePublisher()
    run = await scheduled(scheduler, 3, steps=TWO_EMAILS)
    scheduler.tables.now.advance(days=2)
    loaded = scheduler.tables.runs_loaded
    assert await emit(scheduler, publisher) == 6
    sent = [decode(topics.SEND_DUE, m.key, m.value) for m in publisher.messages]
    assert {(s.run_id, s.attempt) for s in sent} == {(run.run_id, 1)}
    assert {s.content.subject for s in sent} == {"Hi {{ first_name }}"}
    assert {s.send_id for s in sent} == set(scheduler.tables.sends)
    assert scheduler.tables.runs_loaded - loaded == 2, "each step's content read once"


async def test_a_paused_campaign_and_a_send_not_yet_due_emit_nothing():
    scheduler, publisher = Scheduler(), FakePublisher()
    run = await scheduled(scheduler, 2)
    later = await scheduled(scheduler, 2, start=scheduler.tables.now() + timedelta(hours=1))
    await follow_campaign_status(status(run, CampaignStatus.PAUSED, 3), scheduler.uow)
    assert await emit(scheduler, publisher) == 0
    assert await report_lag(scheduler.sends) == {"lag_seconds": 0, "in_flight": 0}
    scheduler.tables.now.advance(hours=2)
    assert await emit(scheduler, publisher) == 2
    assert {decode(topics.SEND_DUE, m.key, m.value).run_id for m in publisher.messages} == {later.run_id}


async def test_sends_whose_publish_failed_are_pending_again():
    scheduler = Scheduler()
    await scheduled(scheduler, 5)
    try:
        await emit(scheduler, FakePublisher(failing=True))
    except ConnectionError:
        pass
    else:
        raise AssertionError("the broker's failure is the caller's to retry")
    assert scheduler.tables.send_states() == {"pending": 5}


async def test_a_send_left_without_an_answer_is_emitted_again_at_the_same_attempt():
    scheduler, publisher = Scheduler(), FakePublisher()
    await scheduled(scheduler, 2)
    contents = StepContents(scheduler.runs)
    assert await emit(scheduler, publisher) == 2
    assert await emit_overdue(scheduler.sends, contents, publisher, 60, 100) == 0, "not before the timeout"
    scheduler.tables.now.advance(seconds=61)
    assert await emit_overdue(scheduler.sends, contents, publisher, 60, 100) == 2
    again = [decode(topics.SEND_DUE, m.key, m.value) for m in publisher.messages[2:]]
    assert {s.attempt for s in again} == {1} and scheduler.tables.send_states() == {"emitted": 2}


async def test_health_says_how_late_the_oldest_due_send_is_and_how_many_are_in_flight():
    scheduler = Scheduler()
    await scheduled(scheduler, 3)
    assert await report_lag(scheduler.sends) == {"lag_seconds": 60.0, "in_flight": 0}
    await emit(scheduler, FakePublisher(), window=1)
    assert (await report_lag(scheduler.sends))["in_flight"] == 1


class StoppingPublisher(FakePublisher):
    """Asks the task to stop once it has published."""

    def __init__(self, stop: asyncio.Event) -> None:
        super().__init__()
        self._stop = stop

    async def send_all(self, messages) -> None:
        await super().send_all(messages)
        self._stop.set()


async def test_the_poller_task_emits_what_is_due_and_ends_on_stop():
    scheduler, stop = Scheduler(), asyncio.Event()
    await scheduled(scheduler, 3)
    publisher = StoppingPublisher(stop)
    settings = Settings(due_workers=2, due_window=2)
    await asyncio.wait_for(
        emit_due_sends(stop, scheduler.uow, scheduler.sends, scheduler.runs, publisher, settings), timeout=1)
    assert len(publisher.messages) == 2, "within the window"


async def test_every_handler_task_and_health_check_finds_the_adapters_it_asks_for():
    settings = Settings()
    async with adapters(settings, None, None) as made:  # made only, not used: no pool needed
        check(SERVICE, {"settings": settings, "pool": None, "publisher": FakePublisher(), **made})
