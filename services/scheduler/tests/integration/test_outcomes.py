"""Outcomes and statuses in any order: none is lost, an older one never wins."""

from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest

from contracts import topics
from contracts.codec import decode
from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import CampaignActivated, CampaignStatusChanged, EmailStatus
from scheduler.handlers import (
    follow_campaign_status,
    record_activation,
    record_outcomes,
    record_recipients,
)
from servicekit.kafka import EventPublisher, Topics
from tests.support.events import activation, evaluated
from tests.support.kafka import read_all
from tests.support.polling import eventually

from .adapters import Scheduler

pytestmark = pytest.mark.integration



def outcome(send, status: DeliveryStatus, **fields) -> EmailStatus:
    return EmailStatus(send_id=send.send_id, campaign_id=send.campaign_id, run_id=send.run_id,
                       step_index=send.step_index, contact_id=send.contact_id, status=status,
                       attempt=send.attempt, **fields)


class AnsweringAtOnce(EventPublisher):
    """The real publisher, and a mailer so quick that each send's outcome is applied
    before the emitter's publish returns: the order that lost outcomes when the emitter
    marked its sends `emitted` only after publishing them."""

    def __init__(self, publisher: EventPublisher, scheduler: Scheduler, status: DeliveryStatus) -> None:
        self.__dict__.update(publisher.__dict__)
        self._scheduler, self._status = scheduler, status

    async def send_all(self, messages) -> None:
        messages = list(messages)
        await super().send_all(messages)
        sends = [decode(topics.SEND_DUE, m.key, m.value) for m in messages]
        retry = datetime.now(UTC) if self._status is DeliveryStatus.DEFERRED else None
        await record_outcomes([outcome(send, self._status, retry_at=retry) for send in sends], self._scheduler.uow)


async def states(scheduler: Scheduler, run_id: UUID) -> dict[str, int]:
    rows = await scheduler.pool.fetch("SELECT state, count(*) FROM sends WHERE run_id = $1 GROUP BY state", run_id)
    return {row["state"]: row["count"] for row in rows}


async def scheduled(scheduler: Scheduler, recipients: int) -> CampaignActivated:
    run = activation(uuid4())
    await record_activation(run, scheduler.uow)
    for batch in evaluated(run, 1, recipients):
        await record_recipients(batch, scheduler.uow)
    return run


@pytest.mark.parametrize("status", [DeliveryStatus.SENT, DeliveryStatus.DEFERRED])
async def test_an_outcome_that_overtakes_the_emit_is_applied(scheduler, publisher, status):
    run = await scheduled(scheduler, 20)
    assert await scheduler.poller(AnsweringAtOnce(publisher, scheduler, status), batch_size=100).emit() == 20
    expected = {} if status is DeliveryStatus.SENT else {"pending": 20}
    assert await states(scheduler, run.run_id) == expected, "no send is left `emitted` without an outcome"
    if status is DeliveryStatus.DEFERRED:
        assert await scheduler.pool.fetchval("SELECT min(attempt) FROM sends WHERE run_id = $1", run.run_id) == 2


def _status(run: CampaignActivated, status: CampaignStatus, previous: CampaignStatus, seq: int):
    return CampaignStatusChanged(campaign_id=run.campaign_id, run_id=run.run_id, status=status,
                                 previous=previous, status_seq=seq)


async def test_a_pause_that_arrives_before_the_activation_holds(scheduler, publisher):
    run = activation(uuid4(), status_seq=2)
    await follow_campaign_status(_status(run, CampaignStatus.PAUSED, CampaignStatus.ACTIVE, 3), scheduler.uow)
    await follow_campaign_status(_status(run, CampaignStatus.ACTIVE, CampaignStatus.DRAFT, 2), scheduler.uow)
    await record_activation(run, scheduler.uow)
    for batch in evaluated(run, 1, 5):
        await record_recipients(batch, scheduler.uow)
    due = scheduler.poller(publisher, batch_size=100)
    assert await due.emit() == 0, "paused: the older activation does not undo the newer pause"
    await follow_campaign_status(_status(run, CampaignStatus.ACTIVE, CampaignStatus.PAUSED, 4), scheduler.uow)
    assert await due.emit() == 5


async def emitted_sends(scheduler: Scheduler, run_id: UUID) -> list:
    rows = await scheduler.pool.fetch(
        "SELECT send_id, campaign_id, run_id, step_index, contact_id, attempt FROM sends"
        " WHERE run_id = $1 AND state = 'emitted'", run_id)
    return [SimpleNamespace(**row) for row in rows]


async def test_the_window_bounds_the_sends_in_flight(scheduler, publisher):
    run = await scheduled(scheduler, 30)
    due = scheduler.poller(publisher, batch_size=100, window=10)
    assert await due.emit() == 10
    assert await due.emit() == 0, "the window is full until answers come"
    answered = (await emitted_sends(scheduler, run.run_id))[:4]
    await record_outcomes([outcome(send, DeliveryStatus.SENT) for send in answered], scheduler.uow)
    assert await due.emit() == 4
    assert await states(scheduler, run.run_id) == {"emitted": 10, "pending": 16}, "the 4 answered are gone"


async def test_a_held_send_is_due_again_on_resume_at_the_same_attempt(scheduler, publisher):
    run = await scheduled(scheduler, 3)
    due = scheduler.poller(publisher, batch_size=100)
    assert await due.emit() == 3
    await follow_campaign_status(_status(run, CampaignStatus.PAUSED, CampaignStatus.ACTIVE, 3), scheduler.uow)
    held = await emitted_sends(scheduler, run.run_id)
    await record_outcomes([outcome(send, DeliveryStatus.HELD) for send in held], scheduler.uow)
    assert await states(scheduler, run.run_id) == {"pending": 3}
    assert await due.emit() == 0, "paused"
    await follow_campaign_status(_status(run, CampaignStatus.ACTIVE, CampaignStatus.PAUSED, 4), scheduler.uow)
    assert await due.emit() == 3
    assert {send.attempt for send in await emitted_sends(scheduler, run.run_id)} == {1}


async def test_a_send_left_without_an_answer_is_emitted_again(scheduler, publisher, kafka_bootstrap, topic_prefix):
    run = await scheduled(scheduler, 2)
    due = scheduler.poller(publisher, batch_size=100, answer_timeout_seconds=0.5)
    assert await due.emit() == 2
    assert await due.emit_overdue() == 0, "not before the timeout"
    await eventually(due.emit_overdue, "the unanswered sends are emitted again", timeout=10)
    records = await read_all(kafka_bootstrap, Topics(topic_prefix).physical(topics.SEND_DUE), 4)
    emitted = Counter((s.send_id, s.attempt) for s in (decode(topics.SEND_DUE, r.key, r.value) for r in records))
    assert sorted(emitted.values()) == [2, 2] and {attempt for _, attempt in emitted} == {1}, "the same sends again"
    assert await states(scheduler, run.run_id) == {"emitted": 2}


class Unreachable(EventPublisher):
    def __init__(self) -> None:
        pass

    async def send_all(self, messages) -> None:
        raise ConnectionError("broker away")


async def test_sends_whose_publish_failed_are_pending_again(scheduler):
    run = await scheduled(scheduler, 5)
    with pytest.raises(ConnectionError):
        await scheduler.poller(Unreachable(), batch_size=100).emit()
    assert await states(scheduler, run.run_id) == {"pending": 5}
