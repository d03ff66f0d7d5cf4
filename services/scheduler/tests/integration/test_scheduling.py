"""The scheduler on the real Kafka and PostgreSQL: storing sends once, emitting them once,
pausing, resuming and retrying."""

import asyncio
import os
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from contracts import topics
from contracts.codec import decode
from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import (
    CampaignActivated,
    CampaignStatusChanged,
    EmailStatus,
    Recipient,
    SegmentEvaluated,
)
from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep
from scheduler.handlers import (
    follow_campaign_status,
    record_activation,
    record_outcomes,
    record_recipients,
)
from servicekit.kafka import Topics
from tests.support.events import evaluated
from tests.support.kafka import message_count, read_all
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.system import spawn, stop_processes, wait_healthy

from .adapters import Scheduler

pytestmark = pytest.mark.integration

EMAIL = SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="Hi {{ first_name }}", text="t"))



def activation(steps=(EMAIL,), start: datetime | None = None) -> CampaignActivated:
    now = datetime.now(UTC)
    start = start or now
    return CampaignActivated(
        campaign_id=uuid4(), run_id=uuid4(), segment_id=uuid4(), steps=list(steps),
        start_date=start.date(), start_time_of_day=start.time().replace(microsecond=0), timezone="UTC",
        start_at=start, activated_at=now,
    )


async def scheduled_run(scheduler: Scheduler, recipients: int, start: datetime | None = None) -> CampaignActivated:
    """A run recorded with its recipients, one email each."""
    run = activation(start=start)
    await record_activation(run, scheduler.uow)
    for batch in evaluated(run, 1, recipients):
        await record_recipients(batch, scheduler.uow)
    return run


async def counts(scheduler: Scheduler, run: CampaignActivated) -> tuple[int, int]:
    """(sends stored, campaign.scheduled events written) for the run."""
    sends = await scheduler.pool.fetchval("SELECT count(*) FROM sends WHERE run_id = $1", run.run_id)
    announced = await scheduler.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = 'campaign.scheduled' AND key = $1", str(run.campaign_id).encode()
    )
    return sends, announced


async def test_redelivered_events_add_nothing_and_early_recipients_wait_for_their_run(scheduler):
    run = activation(steps=[EMAIL, WaitStep(type="WAIT", config=WaitConfig(days=1)), EMAIL])
    first, second = evaluated(run, 2, 50)
    await record_recipients(first, scheduler.uow)  # before campaign.activated: stored, not planned
    assert await counts(scheduler, run) == (0, 0)
    await record_activation(run, scheduler.uow)
    await record_activation(run, scheduler.uow)
    await record_recipients(first, scheduler.uow)
    assert await counts(scheduler, run) == (100, 0)
    await record_recipients(second, scheduler.uow)
    await record_recipients(second, scheduler.uow)
    await record_activation(run, scheduler.uow)
    assert await counts(scheduler, run) == (200, 1), "100 recipients x 2 emails, announced once"


async def announcements(scheduler: Scheduler, run: CampaignActivated) -> list[tuple[int, int]]:
    rows = await scheduler.pool.fetch(
        "SELECT value FROM outbox WHERE topic = 'campaign.scheduled' AND key = $1 ORDER BY id", str(run.campaign_id).encode()
    )
    return [(e.recipients, e.sends) for e in (decode(topics.CAMPAIGN_SCHEDULED, None, row["value"]) for row in rows)]


async def test_a_batch_published_again_adds_the_recipients_it_moved_and_the_run_is_announced_again(scheduler):
    run = activation()
    a, b, c, d, e, f, x = (Recipient(contact_id=uuid4(), email=f"{name}@example.com") for name in "abcdefx")

    def batches(*groups: list[Recipient]) -> list[SegmentEvaluated]:
        return [SegmentEvaluated(run_id=run.run_id, campaign_id=run.campaign_id, batch_no=n, recipients=group,
                                 is_last=n == len(groups) - 1 and len(groups) == 4) for n, group in enumerate(groups)]

    await record_activation(run, scheduler.uow)
    first = batches([a, b], [c, d], [e, f])  # then segment-svc crashed, before its last batch
    second = batches([a, b], [x, c], [d, e], [f])  # evaluated again: x joined, the rest moved right
    for batch in [*first, second[3], *second[:3]]:  # the second's last is handled before the others
        await record_recipients(batch, scheduler.uow)
    for batch in second:  # and Kafka redelivers them all
        await record_recipients(batch, scheduler.uow)

    held = await scheduler.pool.fetch("SELECT contact_id FROM run_recipients WHERE run_id = $1", run.run_id)
    assert sorted(row["contact_id"] for row in held) == sorted(r.contact_id for r in (a, b, c, d, e, f, x))
    assert await counts(scheduler, run) == (7, 2)
    assert await announcements(scheduler, run) == [(6, 6), (7, 7)], "announced when complete, again when x came"


async def test_pause_holds_sends_and_resume_releases_them_once(scheduler, publisher, kafka_bootstrap, topic_prefix):
    run = await scheduled_run(scheduler, 30)
    due = scheduler.poller(publisher, batch_size=1000)
    await follow_campaign_status(_status(run, CampaignStatus.PAUSED), scheduler.uow)
    assert await due.emit() == 0, "a paused campaign emits nothing"
    await follow_campaign_status(_status(run, CampaignStatus.ACTIVE), scheduler.uow)
    assert await due.emit() == 30
    assert await due.emit() == 0, "released once"
    assert await message_count(kafka_bootstrap, Topics(topic_prefix).physical(topics.SEND_DUE)) == 30


async def test_completing_a_campaign_cancels_what_is_pending(scheduler, publisher):
    run = await scheduled_run(scheduler, 10, start=datetime.now(UTC) + timedelta(days=2))
    completed = _status(run, CampaignStatus.COMPLETED).model_copy(update={"status_seq": 3})
    await follow_campaign_status(completed, scheduler.uow)
    assert await scheduler.pool.fetchval(
        "SELECT count(*) FROM sends WHERE run_id = $1 AND state = 'cancelled'", run.run_id) == 10
    assert await scheduler.poller(publisher, 100).emit() == 0


async def test_a_deferred_send_comes_back_at_its_retry_time(scheduler, publisher, kafka_bootstrap, topic_prefix):
    run = await scheduled_run(scheduler, 1)
    due = scheduler.poller(publisher, batch_size=100)
    assert await due.emit() == 1
    send_topic = Topics(topic_prefix).physical(topics.SEND_DUE)
    [first] = await read_all(kafka_bootstrap, send_topic, 1)
    sent = decode(topics.SEND_DUE, first.key, first.value)
    retry_at = datetime.now(UTC) + timedelta(seconds=1.5)
    deferral = EmailStatus(send_id=sent.send_id, campaign_id=run.campaign_id, run_id=run.run_id, step_index=0,
                           contact_id=sent.contact_id, status=DeliveryStatus.DEFERRED, attempt=1, smtp_code=451,
                           retry_at=retry_at)
    await record_outcomes([deferral], scheduler.uow)
    await record_outcomes([deferral, deferral], scheduler.uow)  # redelivered: still one retry
    assert await due.emit() == 0, "not before its retry time"
    await eventually(due.emit, "the deferred send is due again", timeout=10)
    assert datetime.now(UTC) >= retry_at
    records = await read_all(kafka_bootstrap, send_topic, 2)
    again = decode(topics.SEND_DUE, records[-1].key, records[-1].value)
    assert (again.send_id, again.attempt) == (sent.send_id, 2)
    assert await due.emit() == 0 and await message_count(kafka_bootstrap, send_topic) == 2


def _status(run: CampaignActivated, status: CampaignStatus) -> CampaignStatusChanged:
    return CampaignStatusChanged(campaign_id=run.campaign_id, run_id=run.run_id, status=status,
                                 previous=CampaignStatus.ACTIVE)


async def test_two_scheduler_processes_emit_each_send_exactly_once(
    scheduler, publisher, database_url, kafka_bootstrap, topic_prefix, tmp_path
):
    env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "KAFKA_TOPIC_PREFIX": topic_prefix, "DUE_BATCH_SIZE": "100", "DUE_POLL_SECONDS": "0.05",
           "DUE_WINDOW": "10000"}  # no mailer answers here: room for every send
    ports = [free_port(), free_port()]
    processes = [spawn("scheduler", {**env, "HTTP_PORT": str(port)}, tmp_path / f"scheduler-{port}.log")
                 for port in ports]
    try:
        for port, process in zip(ports, processes, strict=True):
            health = await wait_healthy(port, process)
            assert health["lag_seconds"] == 0, "nothing is due yet, so nothing is late"
        run = activation(steps=[EMAIL, WaitStep(type="WAIT", config=WaitConfig(seconds=1)), EMAIL])
        await publisher.publish(run)
        await publisher.publish_all(evaluated(run, 8, 250))  # 2,000 recipients, 4,000 sends

        async def all_emitted():
            return await scheduler.pool.fetchval(
                "SELECT count(*) FILTER (WHERE state = 'emitted') = 4000 AND count(*) = 4000"
                " FROM sends WHERE run_id = $1", run.run_id)

        await eventually(all_emitted, "4,000 sends stored and emitted", timeout=60)
        send_topic = Topics(topic_prefix).physical(topics.SEND_DUE)
        # Every send was published before its row was marked: the topic now holds all there will be.
        assert await message_count(kafka_bootstrap, send_topic) == 4000, "no send emitted twice"
        records = await read_all(kafka_bootstrap, send_topic, 4000)
        assert len({decode(topics.SEND_DUE, r.key, r.value).send_id for r in records}) == 4000
    finally:
        await asyncio.to_thread(stop_processes, processes)


async def test_health_reports_how_late_the_oldest_due_send_is(scheduler, publisher):
    minute_ago = datetime.now(UTC) - timedelta(minutes=1)
    run = activation(start=minute_ago).model_copy(update={"activated_at": minute_ago})
    await record_activation(run, scheduler.uow)
    for batch in evaluated(run, 1, 3):
        await record_recipients(batch, scheduler.uow)
    assert 59 <= await scheduler.sends.lag_seconds() < 120
    await scheduler.poller(publisher, 100).emit()
    assert await scheduler.sends.lag_seconds() == 0
