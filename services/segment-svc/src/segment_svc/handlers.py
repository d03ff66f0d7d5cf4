"""What segment-svc does: one function per use case, for the events it consumes and the
HTTP commands that do more than one repository call. Each takes the event or command and
the adapters it needs, by name (servicekit.wiring); writes that emit contact.changed go
through the unit of work (`uow`), so that the change and its event commit together."""

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

import orjson
import structlog
from prometheus_client import Counter

from contracts.codec import (
    SEND_HOUR_BYTES,
    Message,
    segment_evaluated_message,
    segment_evaluated_room,
    with_send_hour,
)
from contracts.enums import EngagementKind
from contracts.events import CampaignActivated, ContactChanged, ContactUpserted, EmailEngagement
from segment_svc.adapters.imports import ContactImport, ContactImports
from segment_svc.adapters.postgres import (
    ContactRepository,
    EngagementHistory,
    Evaluations,
    SegmentRepository,
    SegmentTransaction,
)
from segment_svc.contacts import (
    Contact,
    ContactDraft,
    ContactNotFound,
    ContactPatch,
    EmailTaken,
    matters_to_the_mailer,
    patched,
)
from segment_svc.criteria import Group
from segment_svc.evaluation import RecipientBatches
from segment_svc.imports import Batches, Reader
from segment_svc.segments import Preview, SegmentNotFound
from segment_svc.send_time import (
    SendTimeSuggestion,
    SuggestionQuery,
    best_hour,
    contact_best_hour,
    segment_profile,
    suggest,
)
from segment_svc.settings import Settings
from servicekit.health import REGISTRY
from servicekit.kafka import EventPublisher, Rejected, correlation_id
from servicekit.uow import UnitOfWork

log = structlog.get_logger()

NOBODY = Group(operator="AND", conditions=[{"field": "email", "op": "eq", "value": ""}])


async def evaluate_segment(
    event: CampaignActivated,
    segments: SegmentRepository,
    evaluations: Evaluations,
    history: EngagementHistory,
    publisher: EventPublisher,
    settings: Settings,
) -> None:
    """Publishes the run's recipients in batches; the last says how many matched.

    Batches hold at most EVALUATION_BATCH_SIZE recipients and KAFKA_MESSAGE_BYTES each (evaluation.py):
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
    batch_size, message_bytes = settings.evaluation_batch_size, settings.kafka_message_bytes
    criteria = await _criteria_of(segments, event.segment_id)
    hours = await BestHours.of(history, criteria) if event.optimize_send_time else None
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
        return [with_send_hour(row["recipient"], self._hour(counts.get(row["id"]))) for row in rows]

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


async def upsert_contact(event: ContactUpserted, contacts: ContactRepository,
                         uow: UnitOfWork[SegmentTransaction]) -> None:
    """Creates or updates the contact with this email; what other systems send is validated
    like what the API receives, and a bad event is rejected to contact.upserted.dlq."""
    fields = event.model_dump(exclude={"event_id", "event_type", "version", "occurred_at"}, exclude_none=True)
    try:
        contact_id = await contacts.id_of(ContactDraft(**fields).email)
        if contact_id is None:
            await add_contact(ContactDraft(**fields), uow)
        else:
            await change_contact(contact_id, ContactPatch(**fields), uow)
    except (ValueError, EmailTaken) as error:
        raise Rejected(str(error)) from None


async def remember_engagement(event: EmailEngagement, uow: UnitOfWork[SegmentTransaction],
                              history: EngagementHistory) -> None:
    """An unsubscribe withdraws the contact's consent (contact.changed then tells the
    mailer); a person's open or click joins their history (machine opens do not)."""
    if event.kind is EngagementKind.UNSUBSCRIBE:
        try:
            await change_contact(event.contact_id, ContactPatch(marketing_opt_in=False), uow)
        except ContactNotFound:
            log.info("unsubscribe_of_a_deleted_contact", contact_id=str(event.contact_id))
    elif not event.machine:
        await history.record(event.send_id, event.kind.value, event.contact_id, event.occurred_at)


async def add_contact(draft: ContactDraft, uow: UnitOfWork[SegmentTransaction]) -> Contact:
    """A new contact, and its consent for the mailer (contact.changed, change_seq 0)."""
    async with uow() as tx:
        contact, change_seq = await tx.contacts.insert(draft)
        await tx.emit(contact.changed(change_seq))
    return contact


async def change_contact(contact_id: UUID, patch: ContactPatch, uow: UnitOfWork[SegmentTransaction]) -> Contact:
    """Applies the patch to the contact as stored, under its row lock; the mailer hears of
    it only when its address or consent changed."""
    async with uow() as tx:
        before = await tx.contacts.lock(contact_id)
        after, change_seq = await tx.contacts.write(contact_id, patched(before, patch))
        if matters_to_the_mailer(before, after):
            await tx.emit(after.changed(change_seq))
    return after


async def delete_contact(contact_id: UUID, uow: UnitOfWork[SegmentTransaction]) -> None:
    """The contact goes, and the mailer hears of it as a tombstone: no more email, ever."""
    async with uow() as tx:
        await tx.contacts.delete(contact_id)
        await tx.emit(ContactChanged(contact_id=contact_id, deleted=True))


async def list_contacts(q: str | None, after: tuple | None, limit: int, contacts: ContactRepository) -> list[Contact]:
    """A page of contacts in id order; with `q`, only those whose email, first name, last
    name or "first last" starts with it, whatever its case, paged by the same cursor."""
    if q is None:
        return await contacts.page(after, limit)
    return await contacts.search(q, after, limit)


class Audience:
    """The contacts as `/api/contacts` serves them (http.py): writes are the use cases
    above, reads the repository's; the list is `list_contacts`."""

    def __init__(self, contacts: ContactRepository, uow: UnitOfWork[SegmentTransaction]) -> None:
        self._contacts, self._uow = contacts, uow

    async def add(self, draft: ContactDraft) -> Contact:
        return await add_contact(draft, self._uow)

    async def update(self, contact_id: UUID, patch: ContactPatch) -> Contact:
        return await change_contact(contact_id, patch, self._uow)

    async def delete(self, contact_id: UUID) -> None:
        await delete_contact(contact_id, self._uow)

    async def get(self, contact_id: UUID) -> Contact:
        return await self._contacts.get(contact_id)


async def preview_segment(segment_id: UUID, segments: SegmentRepository) -> Preview:
    """How many contacts the segment matches now, how many of them opted in, and a few."""
    segment = await segments.get(segment_id)
    return await segments.preview(segment.criteria)


async def suggest_send_time(query: SuggestionQuery, segments: SegmentRepository,
                            history: EngagementHistory) -> SendTimeSuggestion:
    """The segment's best time of day to send, with what it rests on (see send_time.py)."""
    segment = await segments.get(query.segment_id)
    evidence = await history.evidence(segment.criteria, query.timezone)
    return suggest(evidence, query.default_time_of_day)


@dataclass(frozen=True)
class ContactUpload:
    """A file of contacts as it arrives: "ndjson" or "csv", in chunks of bytes."""

    kind: str
    chunks: AsyncIterable[bytes]


@asynccontextmanager
async def import_contacts(upload: ContactUpload, imports: ContactImports,
                          settings: Settings) -> AsyncIterator[ContactImport]:
    """Reads the upload as it arrives and upserts it in batches while the next is parsed,
    all in one transaction; then hands over the committed import, whose counts and
    rejections (read back by cursor, however many) make the report."""
    async with imports.open() as job:
        async with job.transaction():
            await _read_and_store(upload.chunks, job, Reader(upload.kind), Batches(settings.import_batch_size))
        yield job


# Batches prepared and waiting for the database, each stored after the one before: two may
# wait, so that the database, the slower side, always has the next at hand.
_WAITING_BATCHES = 2


async def _read_and_store(chunks: AsyncIterable[bytes], job: ContactImport, reader: Reader, batches: Batches) -> None:
    storing: deque[asyncio.Task] = deque()

    async def store_after(before: asyncio.Task | None, ready, rejections: list) -> None:
        if before is not None:
            await before
        await job.store(ready, rejections)

    async def hand_over(batch) -> None:
        rows, rejections = batch
        ready = job.prepare(rows)
        if len(storing) == _WAITING_BATCHES:
            await storing.popleft()
        storing.append(asyncio.create_task(store_after(storing[-1] if storing else None, ready, rejections)))

    try:
        async for chunk in chunks:
            for row in reader.feed(chunk):
                if batch := batches.add(row):
                    await hand_over(batch)
            # Parsing holds the loop: between small chunks it feeds the COPY under way,
            # which the database would otherwise wait for.
            await asyncio.sleep(0)
        for row in reader.close():
            if batch := batches.add(row):
                await hand_over(batch)
        await hand_over(batches.take())
        while storing:
            await storing.popleft()
    finally:
        for task in storing:  # the connection is busy until they end
            task.cancel()
        await asyncio.gather(*storing, return_exceptions=True)
