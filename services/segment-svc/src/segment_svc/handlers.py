"""What segment-svc does when events arrive."""

import asyncio
from uuid import UUID

import orjson
import structlog
from prometheus_client import Counter

from contracts.codec import MESSAGE_BYTES, Message, segment_evaluated_message, segment_evaluated_room
from contracts.enums import EngagementKind
from contracts.events import CampaignActivated, ContactUpserted, EmailEngagement
from segment_svc.adapters.postgres import ContactRepository, EngagementHistory, Evaluations, SegmentRepository
from segment_svc.contacts import ContactDraft, ContactNotFound, ContactPatch, EmailTaken
from segment_svc.criteria import Group
from segment_svc.evaluation import SEND_HOUR_BYTES, RecipientBatches
from segment_svc.segments import SegmentNotFound
from segment_svc.send_time import best_hour, contact_best_hour, segment_profile
from servicekit.health import REGISTRY
from servicekit.kafka import EventPublisher, Rejected, correlation_id

log = structlog.get_logger()

NOBODY = Group(operator="AND", conditions=[{"field": "email", "op": "eq", "value": ""}])


async def evaluate_segment(
    event: CampaignActivated,
    segments: SegmentRepository,
    evaluations: Evaluations,
    publisher: EventPublisher,
    batch_size: int,
    history: EngagementHistory | None = None,
    message_bytes: int = MESSAGE_BYTES,
) -> None:
    """Publishes the run's recipients in batches; the last says how many matched.

    Batches hold at most `batch_size` recipients and `message_bytes` each (evaluation.py):
    contacts are read in id order and criteria judged as of the activation, so an
    evaluation done again (segment-svc died after publishing some batches, before
    recording the run) publishes the same batches when the contacts are the same; when
    they changed meanwhile, the scheduler keeps every recipient either attempt sent it.

    Marketing consent is not filtered here (the mailer checks it at send time) but the
    count of opted-in matches is reported. A redelivered event publishes nothing. With
    optimize_send_time each recipient carries their best hour (send_time.py).
    """
    if await evaluations.already_evaluated(event.run_id):
        log.info("evaluation_already_done")
        return
    criteria = await _criteria_of(segments, event.segment_id)
    hours = await BestHours.of(history, criteria) if event.optimize_send_time and history else None
    cutter = RecipientBatches(batch_size, segment_evaluated_room(message_bytes, correlation_id.get()),
                              extra=SEND_HOUR_BYTES if hours else 0)
    batch_no = total = opted_in = 0
    pending: list[str] | None = None  # held back: the last batch says is_last
    delivered = []  # batches go out back to back; the run is recorded once the broker has all
    async for rows in evaluations.matches(criteria, batch_size, now=event.activated_at):
        measured = [row["recipient"] for row in rows]
        for batch in cutter.add(await hours.add_to(rows) if hours else measured, measured):
            if pending is not None:
                delivered.append(await publisher.send(_batch(event, batch_no, pending)))
                batch_no += 1
            pending = batch
        total += len(rows)
        opted_in += sum(1 for row in rows if row["marketing_opt_in"])
    last = cutter.rest()
    if pending is not None and last:
        delivered.append(await publisher.send(_batch(event, batch_no, pending)))
        batch_no += 1
    elif pending is not None:
        last = pending
    delivered.append(await publisher.send(_batch(event, batch_no, last, is_last=True, total=total,
                                                 opted_in=opted_in)))
    await asyncio.gather(*delivered)
    _too_large(cutter.too_large, message_bytes)
    await evaluations.record(event.run_id, event.campaign_id, event.segment_id, total, opted_in)
    log.info("segment_evaluated", total_matched=total, opted_in_matched=opted_in, batches=batch_no + 1)


RECIPIENTS_TOO_LARGE = Counter("recipients_too_large", "Matched contacts too large for a segment.evaluated message,"
                               " left out of their run (stored before contacts were limited)", registry=REGISTRY)


def _too_large(recipients: list[tuple[str, int]], message_bytes: int) -> None:
    """Contacts the run cannot carry: only those stored before attributes were limited."""
    for recipient, size in recipients:
        contact_id = orjson.loads(recipient)["contact_id"]
        log.error("recipient_too_large_left_out", contact_id=contact_id, recipient_bytes=size,
                  message_bytes=message_bytes)
        RECIPIENTS_TOO_LARGE.inc()


class BestHours:
    """Each recipient's best hour of day, for a run with optimize_send_time: their own
    history shrunk toward the segment's; the segment's hour for those without any."""

    def __init__(self, history: EngagementHistory, profile: list[float]) -> None:
        self._history, self._profile = history, profile
        self._segment_hour = best_hour(profile)

    @classmethod
    async def of(cls, history: EngagementHistory, criteria: Group) -> "BestHours":
        return cls(history, segment_profile(await history.evidence(criteria)))

    async def add_to(self, rows: list) -> list[str]:
        counts = await self._history.hours_of([row["id"] for row in rows])
        return [
            f'{row["recipient"][:-1]}, "send_hour": {self._hour(counts.get(row["id"]))}}}' for row in rows
        ]

    def _hour(self, counts: dict[int, int] | None) -> int:
        return contact_best_hour(counts, self._profile) if counts else self._segment_hour


async def _criteria_of(segments: SegmentRepository, segment_id: UUID) -> Group:
    try:
        return (await segments.get(segment_id)).criteria
    except SegmentNotFound:
        # Deleted after the campaign was created: the run reaches nobody, and completes.
        log.warning("segment_missing_at_evaluation", segment_id=str(segment_id))
        return NOBODY


def _batch(event: CampaignActivated, batch_no: int, recipients: list[str], is_last: bool = False,
           total: int | None = None, opted_in: int | None = None) -> Message:
    return segment_evaluated_message(
        run_id=event.run_id, campaign_id=event.campaign_id, batch_no=batch_no, recipients_json=recipients,
        is_last=is_last, total_matched=total, opted_in_matched=opted_in, correlation_id=correlation_id.get(),
    )


async def upsert_contact(event: ContactUpserted, contacts: ContactRepository) -> None:
    """Creates or updates the contact with this email; what other systems send is validated
    like what the API receives, and a bad event is rejected to contact.upserted.dlq."""
    fields = event.model_dump(exclude={"event_id", "event_type", "version", "occurred_at"}, exclude_none=True)
    try:
        contact_id = await contacts.id_of(ContactDraft(**fields).email)
        if contact_id is None:
            await contacts.add(ContactDraft(**fields))
        else:
            await contacts.update(contact_id, ContactPatch(**fields))
    except (ValueError, EmailTaken) as error:
        raise Rejected(str(error)) from None


async def remember_engagement(event: EmailEngagement, contacts: ContactRepository,
                              history: EngagementHistory) -> None:
    """An unsubscribe withdraws the contact's consent (contact.changed then tells the
    mailer); a person's open or click joins their history (machine opens do not)."""
    if event.kind is EngagementKind.UNSUBSCRIBE:
        try:
            await contacts.update(event.contact_id, ContactPatch(marketing_opt_in=False))
        except ContactNotFound:
            log.info("unsubscribe_of_a_deleted_contact", contact_id=str(event.contact_id))
    elif not event.machine:
        await history.record(event.send_id, event.kind.value, event.contact_id, event.occurred_at)
