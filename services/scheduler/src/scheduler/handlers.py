"""What the scheduler does when events arrive, and the due-poller that emits send.due."""

import asyncio
from uuid import UUID

import structlog

from contracts.codec import Message, send_due_message
from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import (
    CampaignActivated,
    CampaignScheduled,
    CampaignStatusChanged,
    EmailStatus,
    SegmentEvaluated,
)
from scheduler.adapters.postgres import SendStore
from scheduler.domain import Run, share_window
from servicekit import outbox
from servicekit.health import HEALTH
from servicekit.kafka import EventPublisher, correlation_id

log = structlog.get_logger()


async def record_activation(event: CampaignActivated, store: SendStore) -> None:
    run = Run.from_event(event)
    async with store.locked(run.run_id, exclusive=True) as connection:
        await store.save_run(connection, run)
        # Active as of the activation, unless a newer status (a pause) came first.
        await store.follow(connection, run.campaign_id, "active", event.status_seq, unversioned_wins=False)
        planned = await store.plan_waiting(connection, run)
        if await _announce_when_complete(connection, store, run, planned) or planned:
            await store.refresh_statistics(connection)


async def record_recipients(event: SegmentEvaluated, store: SendStore) -> None:
    async with store.locked(event.run_id, exclusive=False) as connection:
        run = await store.load_run(connection, event.run_id)
        fresh = await store.save_batch(connection, event, planned=run is not None)
        if fresh is None:
            log.info("batch_already_recorded", batch_no=event.batch_no)
            return
        if run is None:
            return  # the recipients wait, unplanned, for campaign.activated
        planned = await store.add_sends(connection, run, fresh)
        if await _announce_when_complete(connection, store, run, planned) or event.batch_no == 0:
            await store.refresh_statistics(connection)


async def _announce_when_complete(connection, store: SendStore, run: Run, planned: int) -> bool:
    """campaign.scheduled when the run's last batch and all before it are planned, and
    again if a batch published again adds sends to it afterwards (campaign-api keeps the
    latest: completion waits for those sends too)."""
    totals = await store.scheduling_totals(connection, run.run_id, run.emails, planned)
    if totals is None:
        if planned:
            log.debug("sends_planned", sends=planned)
        return False
    recipients, sends = totals
    await outbox.add(
        connection,
        CampaignScheduled(campaign_id=run.campaign_id, run_id=run.run_id, recipients=recipients, sends=sends),
    )
    log.info("run_scheduled", recipients=recipients, sends=sends)
    return True


_STATES = {
    CampaignStatus.ACTIVE: "active",
    CampaignStatus.PAUSED: "paused",
    CampaignStatus.COMPLETED: "completed",
}


async def follow_campaign_status(event: CampaignStatusChanged, store: SendStore) -> None:
    state = _STATES.get(event.status)
    if state is not None:
        cancelled = await store.set_state(event.campaign_id, state, event.status_seq)
        if cancelled is None:
            log.info("older_campaign_state_ignored", state=state, status_seq=event.status_seq)
        else:
            log.info("campaign_state_followed", state=state, status_seq=event.status_seq, cancelled=cancelled)


async def record_outcomes(events: list[EmailStatus], store: SendStore) -> None:
    """A batch of the mailer's answers, applied together."""
    retries, held, finished = [], [], []
    for event in events:
        if event.status is DeliveryStatus.DEFERRED and event.retry_at is not None:
            retries.append((event.send_id, event.attempt, event.retry_at))
        elif event.status is DeliveryStatus.HELD:
            held.append((event.send_id, event.attempt))
        elif event.status.is_terminal:
            finished.append(event.send_id)
    await store.apply_outcomes(_latest(retries), _latest(held), finished)


def _latest(answers: list[tuple]) -> list[tuple]:
    """One answer per send (the same send twice in one statement is refused), its highest attempt."""
    return list({answer[0]: answer for answer in sorted(answers, key=lambda answer: answer[1])}.values())


class DueSends:
    """Emits due sends as send.due, keeping at most `window` of them in flight (emitted,
    not yet answered) and sharing that window between the running campaigns.

    Sends are marked `emitted` and committed before they are published, so no answer can
    arrive before its send is known to be in flight. A send whose publish failed is
    released; one whose answer is overdue (a crash between commit and publish, a lost
    answer) is emitted again: every send is answered, or still pending."""

    def __init__(self, store: SendStore, publisher: EventPublisher, batch_size: int, window: int = 1_000_000,
                 answer_timeout_seconds: float = 60.0) -> None:
        self._store = store
        self._publisher = publisher
        self._batch_size = batch_size
        self._window = window
        self._answer_timeout = answer_timeout_seconds
        self._contents: dict[tuple[UUID, int], str] = {}  # a run's steps never change
        self._contents_kept = 1024  # steps of so many runs: enough for all that are sending

    async def emit(self) -> int:
        async with self._store.pool.acquire() as connection:
            async with connection.transaction():
                # One claimer at a time, across instances, so that two cannot both fill the window.
                await connection.execute("SELECT pg_advisory_xact_lock(hashtext('scheduler.due-window'))")
                demand = await self._store.due_demand(connection, self._batch_size)
                quotas = share_window(self._window, self._batch_size, demand)
                rows = await self._store.claim(connection, quotas) if quotas else []
            if rows:
                await self._publish(connection, rows)
        return len(rows)

    async def emit_overdue(self) -> int:
        rows = await self._store.overdue(self._answer_timeout, self._batch_size)
        if rows:
            log.warning("answers_overdue_emitted_again", sends=len(rows))
            async with self._store.pool.acquire() as connection:
                await self._publish(connection, rows)
        return len(rows)

    async def _publish(self, connection, rows) -> None:
        try:
            messages = [await self._message(connection, row) for row in rows]
            await self._publisher.send_all(messages)
        except BaseException:
            await asyncio.shield(self._store.release([row["send_id"] for row in rows]))
            raise

    async def _message(self, connection, row) -> Message:
        key = (row["run_id"], row["step_index"])
        content = self._contents.get(key)
        if content is None:
            if len(self._contents) >= self._contents_kept:  # a long-lived process forgets old runs
                self._contents.clear()
            run = await self._store.load_run(connection, row["run_id"])
            content = self._contents[key] = run.email_step(row["step_index"]).config.model_dump_json()
        return send_due_message(
            send_id=row["send_id"], campaign_id=row["campaign_id"], run_id=row["run_id"],
            contact_id=row["contact_id"], step_index=row["step_index"], due_at=row["due_at"],
            attempt=row["attempt"], recipient_json=row["recipient_json"], content_json=content,
            correlation_id=correlation_id.get(),
        )

    async def run(self, stop: asyncio.Event, poll_seconds: float, workers: int = 1) -> None:
        """`workers` emitters side by side: one publishes while another claims."""
        await asyncio.gather(self._overdue(stop), *(self._work(stop, poll_seconds) for _ in range(workers)))

    async def _work(self, stop: asyncio.Event, poll_seconds: float) -> None:
        while not stop.is_set():
            try:
                emitted = await self.emit()
                HEALTH.recovered("due-poller")
            except Exception as error:  # Kafka or Postgres away: the rows stay (or are again) pending
                HEALTH.degraded("due-poller", repr(error))
                log.warning("emit_failed", error=repr(error))
                emitted = 0
            if emitted < self._batch_size:
                await _pause(stop, poll_seconds)

    async def _overdue(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _pause(stop, max(0.5, self._answer_timeout / 4))
            try:
                await self.emit_overdue()
            except Exception as error:
                log.warning("emit_overdue_failed", error=repr(error))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
