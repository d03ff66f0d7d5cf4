"""What the scheduler does: one function per event it reacts to, and the due-poller (a
task) that emits send.due. Handlers take the event and the adapters they need, by name
(see bootstrap): `uow` for a transaction, or `sends` and `runs` where one statement
commits on its own."""

import asyncio
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import structlog

from contracts.codec import Message, send_due_message
from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import (
    CampaignActivated,
    CampaignScheduled,
    CampaignStatusChanged,
    EmailStatus,
    Recipient,
    SegmentEvaluated,
)
from scheduler.adapters.postgres import Runs, SchedulerTransaction, Sends
from scheduler.domain import Planner, Run, share_window
from scheduler.settings import Settings
from servicekit.health import HEALTH
from servicekit.kafka import EventPublisher, correlation_id
from servicekit.uow import UnitOfWork

log = structlog.get_logger()

Scheduler = UnitOfWork[SchedulerTransaction]
# One claimer at a time, across instances, so that two cannot both fill the window.
DUE_WINDOW_LOCK = "scheduler.due-window"


def run_lock(run_id: UUID) -> str:
    """The run's lock, from any scheduler instance: batches of a run share it (they are
    recorded side by side), activation holds it alone, so the recipients of a batch that
    found no run are all there when the run is planned."""
    return f"run:{run_id}"


async def record_activation(event: CampaignActivated, uow: Scheduler) -> None:
    run = Run.from_event(event)
    async with uow(run_lock(run.run_id)) as tx:
        await tx.runs.save(run)
        # Active as of the activation, unless a newer status (a pause) came first.
        await tx.states.follow(run.campaign_id, "active", event.status_seq, unversioned_wins=False)
        planned = await _plan(tx, run, await tx.recipients.plan_waiting(run.run_id))
        complete = await _announce_when_complete(tx, run, planned)
    if complete or planned:
        await _refresh_statistics(uow)


async def record_recipients(event: SegmentEvaluated, uow: Scheduler) -> None:
    """Stores a batch's recipients, planned when their run is known (else they wait for
    it). A redelivered batch adds nothing; a batch published again by a second
    evaluation adds the recipients the run lacks."""
    async with uow(run_lock(event.run_id), shared=True) as tx:
        run = await tx.runs.load(event.run_id)
        new = await tx.batches.record(event)
        if new is None:
            log.info("batch_already_recorded", batch_no=event.batch_no)
            return
        fresh = await tx.recipients.add(event.run_id, event.recipients, planned=run is not None, new=new)
        if not new or len(fresh) < len(event.recipients):
            log.info("batch_published_again", batch_no=event.batch_no, recipients=len(event.recipients),
                     added=len(fresh))
        if run is None:
            return  # the recipients wait, unplanned, for campaign.activated
        planned = await _plan(tx, run, fresh)
        complete = await _announce_when_complete(tx, run, planned)
    if complete or event.batch_no == 0:
        await _refresh_statistics(uow)


async def _refresh_statistics(uow: Scheduler) -> None:
    """After a run's first and last batch, so that the claim walks the due index (see
    migrations/0002). In a transaction of its own: ANALYZE takes 0.7 s on a million earlier
    sends, and inside the batch's it held back the commit and with it the first email.
    Should it fail after that commit, the message tried again finds its batch recorded
    and refreshes nothing: autovacuum's analyse (after 1% of sends changed) catches up."""
    async with uow() as tx:
        await tx.sends.refresh_statistics()


async def _plan(tx: SchedulerTransaction, run: Run, recipients: list[Recipient]) -> int:
    """Stores the recipients' sends; how many were new."""
    stored = await tx.sends.add(Planner(run).sends_of(recipients))
    if stored:
        await tx.runs.count_sends(run.run_id, stored)
    return stored


async def _announce_when_complete(tx: SchedulerTransaction, run: Run, planned: int) -> bool:
    """campaign.scheduled when the run's last batch and all before it are planned, and
    again if a batch published again adds sends to it afterwards (campaign-api keeps the
    latest: completion waits for those sends too)."""
    totals = await tx.runs.totals_to_announce(run.run_id, run.emails, planned)
    if totals is None:
        if planned:
            log.debug("sends_planned", sends=planned)
        return False
    recipients, sends = totals
    await tx.emit(CampaignScheduled(campaign_id=run.campaign_id, run_id=run.run_id, recipients=recipients,
                                    sends=sends))
    log.info("run_scheduled", recipients=recipients, sends=sends)
    return True


_STATES = {
    CampaignStatus.ACTIVE: "active",
    CampaignStatus.PAUSED: "paused",
    CampaignStatus.COMPLETED: "completed",
}


async def follow_campaign_status(event: CampaignStatusChanged, uow: Scheduler) -> None:
    """Pauses, resumes or completes the campaign, unless a newer state is known;
    completing cancels what is still pending. Sends in flight come back from the mailer:
    held, cancelled or sent."""
    state = _STATES.get(event.status)
    if state is None:
        return
    async with uow() as tx:
        if not await tx.states.follow(event.campaign_id, state, event.status_seq):
            log.info("older_campaign_state_ignored", state=state, status_seq=event.status_seq)
            return
        cancelled = await tx.sends.cancel_pending(event.campaign_id) if state == "completed" else 0
    log.info("campaign_state_followed", state=state, status_seq=event.status_seq, cancelled=cancelled)


async def record_outcomes(events: list[EmailStatus], uow: Scheduler) -> None:
    """A batch of the mailer's answers, in one transaction. A deferred send is due again
    at its retry time with the next attempt, a held one (its campaign was paused) at the
    same attempt; both once only, however often the answer is redelivered. A send that
    went out or was given up is done, also when its emission had been undone."""
    retries, held, finished = [], [], []
    for event in events:
        if event.status is DeliveryStatus.DEFERRED and event.retry_at is not None:
            retries.append((event.send_id, event.attempt, event.retry_at))
        elif event.status is DeliveryStatus.HELD:
            held.append((event.send_id, event.attempt))
        elif event.status.is_terminal:
            finished.append(event.send_id)
    if not (retries or held or finished):
        return
    async with uow() as tx:
        if retries:
            await tx.sends.retry(_latest(retries))
        if held:
            await tx.sends.hold(_latest(held))
        if finished:
            await tx.sends.finish(finished)


def _latest(answers: list[tuple]) -> list[tuple]:
    """One answer per send (the same send twice in one statement is refused), its highest attempt."""
    return list({answer[0]: answer for answer in sorted(answers, key=lambda answer: answer[1])}.values())


# The due-poller. Sends are marked `emitted` and committed before they are published, so
# no answer can arrive before its send is known to be in flight. A send whose publish
# failed is released; one whose answer is overdue (a crash between commit and publish, a
# lost answer) is emitted again: every send is answered, or still pending.


class StepContents:
    """The JSON of each run's email steps, as send.due carries it, read once: a run's
    steps never change."""

    def __init__(self, runs: Runs, kept: int = 1024) -> None:
        self._runs = runs
        self._contents: dict[tuple[UUID, int], str] = {}
        self._kept = kept  # steps of so many runs: enough for all that are sending

    def get(self, run_id: UUID, step_index: int) -> str | None:
        return self._contents.get((run_id, step_index))

    async def load(self, run_id: UUID, step_index: int) -> str:
        if len(self._contents) >= self._kept:  # a long-lived process forgets old runs
            self._contents.clear()
        run = await self._runs.load(run_id)
        content = self._contents[(run_id, step_index)] = run.email_step(step_index).config.model_dump_json()
        return content


async def emit_due(uow: Scheduler, sends: Sends, contents: StepContents, publisher: EventPublisher,
                   batch_size: int, window: int) -> int:
    """Claims the due sends the window has room for, shared between the running
    campaigns, and publishes them; how many."""
    async with uow(DUE_WINDOW_LOCK) as tx:
        quotas = share_window(window, batch_size, await tx.sends.due_demand(batch_size))
        rows = await tx.sends.claim(quotas) if quotas else []
    if rows:
        await _publish(rows, sends, contents, publisher)
    return len(rows)


async def emit_overdue(sends: Sends, contents: StepContents, publisher: EventPublisher, timeout_seconds: float,
                       batch_size: int) -> int:
    """Publishes again the sends left without an answer for `timeout_seconds`; how many."""
    rows = await sends.overdue(timeout_seconds, batch_size)
    if rows:
        log.warning("answers_overdue_emitted_again", sends=len(rows))
        await _publish(rows, sends, contents, publisher)
    return len(rows)


async def _publish(rows: list[Mapping[str, Any]], sends: Sends, contents: StepContents,
                   publisher: EventPublisher) -> None:
    try:
        # The cache answers all but a run's first sends: no await per send on the hot path.
        messages = [_message(row, contents.get(row["run_id"], row["step_index"])
                             or await contents.load(row["run_id"], row["step_index"])) for row in rows]
        await publisher.send_all(messages)
    except BaseException:
        await asyncio.shield(sends.release([row["send_id"] for row in rows]))
        raise


def _message(row: Mapping[str, Any], content_json: str) -> Message:
    return send_due_message(
        send_id=row["send_id"], campaign_id=row["campaign_id"], run_id=row["run_id"],
        contact_id=row["contact_id"], step_index=row["step_index"], due_at=row["due_at"],
        attempt=row["attempt"], recipient_json=row["recipient_json"],
        content_json=content_json, correlation_id=correlation_id.get(),
    )


async def emit_due_sends(stop: asyncio.Event, uow: Scheduler, sends: Sends, runs: Runs, publisher: EventPublisher,
                         settings: Settings) -> None:
    """The due-poller, until `stop`: `DUE_WORKERS` emitters side by side (one publishes
    while another claims), and the overdue sends emitted again."""
    contents = StepContents(runs)

    async def emitting() -> None:
        while not stop.is_set():
            try:
                emitted = await emit_due(uow, sends, contents, publisher, settings.due_batch_size, settings.due_window)
                HEALTH.recovered("due-poller")
            except Exception as error:  # Kafka or Postgres away: the rows stay (or are again) pending
                HEALTH.degraded("due-poller", repr(error))
                log.warning("emit_failed", error=repr(error))
                emitted = 0
            if emitted < settings.due_batch_size:
                await _pause(stop, settings.due_poll_seconds)

    async def emitting_overdue() -> None:
        timeout = settings.answer_timeout_seconds
        while not stop.is_set():
            await _pause(stop, max(0.5, timeout / 4))
            try:
                await emit_overdue(sends, contents, publisher, timeout, settings.due_batch_size)
            except Exception as error:
                log.warning("emit_overdue_failed", error=repr(error))

    await asyncio.gather(emitting_overdue(), *(emitting() for _ in range(settings.due_workers)))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def report_lag(sends: Sends) -> dict:
    """/healthz: how late the oldest due send of an active campaign is, and how many are in flight."""
    return {"lag_seconds": round(await sends.lag_seconds(), 3), "in_flight": await sends.in_flight()}
