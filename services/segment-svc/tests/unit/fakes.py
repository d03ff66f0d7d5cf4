"""In-memory stand-ins for segment-svc's adapters: the contacts, segments, evaluations and
engagement tables of adapters/postgres.py as dicts, with the decisions their statements
make (a unique email, the change sequence, one engagement per send and kind, one
evaluation per run), so that handlers can be tested without a server."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import orjson

from contracts import topics
from contracts.codec import Message, decode
from contracts.events import SegmentEvaluated
from segment_svc.contacts import Contact, ContactDraft, ContactNotFound, EmailTaken, new_contact_id
from segment_svc.criteria import Group
from segment_svc.handlers import Audience
from segment_svc.imports import ImportRow, Rejection
from segment_svc.segments import Preview, Segment, SegmentDraft, SegmentNotFound
from segment_svc.send_time import HOURS, Evidence
from segment_svc.settings import Settings
from servicekit.testing import FakeOutbox, FakeUnitOfWork


class Tables:
    def __init__(self) -> None:
        self.contacts: dict[UUID, Contact] = {}
        self.change_seq: dict[UUID, int] = {}
        self.next_seq = 0  # the sequence contact_changes (migration 0007)
        self.segments: dict[UUID, Segment] = {}
        self.evaluations: dict[UUID, tuple[int, int]] = {}  # run -> (total, opted_in)
        self.engagements_counted: set[tuple[UUID, str]] = set()
        self.hours: dict[UUID, dict[int, int]] = {}  # contact -> hour of week -> events

    def recipient_row(self, contact: Contact) -> dict[str, Any]:
        """What an evaluation reads of a contact: its recipient JSON (migration 0005)."""
        recipient = {"contact_id": str(contact.id), "email": contact.email, "first_name": contact.first_name,
                     "last_name": contact.last_name, "timezone": contact.timezone,
                     "attributes": contact.attributes, "marketing_opt_in": contact.marketing_opt_in,
                     "change_seq": self.change_seq[contact.id]}
        return {"recipient": orjson.dumps(recipient).decode(), "marketing_opt_in": contact.marketing_opt_in,
                "id": contact.id}


class FakeContacts:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self.locked: list[UUID] = []

    async def insert(self, draft: ContactDraft) -> tuple[Contact, int]:
        if await self.id_of(draft.email) is not None:
            raise EmailTaken(draft.email)
        now = datetime.now(UTC)
        contact = Contact(**draft.model_dump(), id=new_contact_id(), created_at=now, updated_at=now)
        self._t.contacts[contact.id], self._t.change_seq[contact.id] = contact, 0
        return contact, 0

    async def get(self, contact_id: UUID) -> Contact:
        if contact_id not in self._t.contacts:
            raise ContactNotFound(contact_id)
        return self._t.contacts[contact_id]

    async def lock(self, contact_id: UUID) -> Contact:
        self.locked.append(contact_id)
        return await self.get(contact_id)

    async def write(self, contact_id: UUID, fields: dict[str, Any]) -> tuple[Contact, int]:
        if await self.id_of(fields["email"]) not in (None, contact_id):
            raise EmailTaken(fields["email"])
        before = await self.get(contact_id)
        after = Contact.model_validate({**before.model_dump(), **fields, "updated_at": datetime.now(UTC)})
        self._t.next_seq += 1
        self._t.contacts[contact_id], self._t.change_seq[contact_id] = after, self._t.next_seq
        return after, self._t.next_seq

    async def delete(self, contact_id: UUID) -> None:
        if self._t.contacts.pop(contact_id, None) is None:
            raise ContactNotFound(contact_id)

    async def id_of(self, email: str) -> UUID | None:
        return next((c.id for c in self._t.contacts.values() if c.email == email), None)

    async def page(self, after: tuple | None, limit: int) -> list[Contact]:
        ids = sorted(i for i in self._t.contacts if after is None or i > after[1])
        return [self._t.contacts[i] for i in ids[:limit]]

    async def search(self, q: str, after: tuple | None, limit: int) -> list[Contact]:
        """What the statement decides: email, first, last or "first last" name starting with
        q, whatever its case (PostgreSQL's lower(); Python's here)."""
        def found(contact: Contact) -> bool:
            full = f"{contact.first_name} {contact.last_name}" if contact.first_name and contact.last_name else None
            names = (contact.email, contact.first_name, contact.last_name, full)
            return any(name is not None and name.lower().startswith(q.lower()) for name in names)

        return [contact for contact in await self.page(after, len(self._t.contacts)) if found(contact)][:limit]


class FakeTransaction(FakeOutbox):
    def __init__(self, tables: Tables) -> None:
        super().__init__()
        self.contacts = FakeContacts(tables)


class FakeSegments:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self.previewed: list[Group] = []

    async def add(self, draft: SegmentDraft) -> Segment:
        now = datetime.now(UTC)
        segment = Segment(**draft.model_dump(), id=uuid4(), created_at=now, updated_at=now)
        self._t.segments[segment.id] = segment
        return segment

    async def get(self, segment_id: UUID) -> Segment:
        if segment_id not in self._t.segments:
            raise SegmentNotFound(segment_id)
        return self._t.segments[segment_id]

    async def preview(self, criteria: Group, sample_size: int = 10) -> Preview:
        """Every contact matches here: the criteria are the SQL's to judge (integration tests)."""
        self.previewed.append(criteria)
        contacts = sorted(self._t.contacts.values(), key=lambda c: c.id)
        return Preview(count=len(contacts), opted_in=sum(c.marketing_opt_in for c in contacts),
                       sample=[c.model_dump(mode="json") for c in contacts[:sample_size]])


class FakeEvaluations:
    """Every contact matches, in id order, read `batch_size` at a time."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self.asked: list[tuple[Group, datetime | None]] = []

    async def already_evaluated(self, run_id: UUID) -> bool:
        return run_id in self._t.evaluations

    async def matches(self, criteria: Group, batch_size: int, now: datetime | None = None) -> AsyncIterator[list]:
        self.asked.append((criteria, now))
        rows = [self._t.recipient_row(self._t.contacts[i]) for i in sorted(self._t.contacts)]
        for start in range(0, len(rows), batch_size):
            yield rows[start:start + batch_size]

    async def record(self, run_id: UUID, campaign_id: UUID, segment_id: UUID, total: int, opted_in: int) -> None:
        self._t.evaluations.setdefault(run_id, (total, opted_in))


class FakeHistory:
    def __init__(self, tables: Tables, evidence: Evidence | None = None) -> None:
        self._t = tables
        self.evidence_of = evidence or Evidence(0, 0, [0] * HOURS, [0.0] * HOURS, 0.0, [0] * HOURS)
        self.asked: list[tuple[Group, str]] = []

    async def record(self, send_id: UUID, kind: str, contact_id: UUID, at: datetime) -> None:
        if (send_id, kind) in self._t.engagements_counted or contact_id not in self._t.contacts:
            return
        self._t.engagements_counted.add((send_id, kind))
        local = at.astimezone(ZoneInfo(self._t.contacts[contact_id].timezone or "UTC"))
        hour = local.weekday() * 24 + local.hour
        hours = self._t.hours.setdefault(contact_id, {})
        hours[hour] = hours.get(hour, 0) + 1

    async def evidence(self, criteria: Group, zone: str = "UTC") -> Evidence:
        self.asked.append((criteria, zone))
        return self.evidence_of

    async def hours_of(self, contact_ids: list[UUID]) -> dict[UUID, dict[int, int]]:
        return {i: self._t.hours[i] for i in contact_ids if i in self._t.hours}


class FakePublisher:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> asyncio.Future:
        self.messages.append(message)
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    def batches(self) -> list[SegmentEvaluated]:
        return [decode(topics.SEGMENT_EVALUATED, m.key, m.value) for m in self.messages]


class FakeImport:
    """One import: upserts by email into the tables once committed (as its transaction
    would); rejections kept in line order."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self.inserted = self.updated = self.rejected = 0
        self.batches: list[list[ImportRow]] = []
        self._rejections: list[Rejection] = []
        self.committed = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield
        self.committed = True

    @staticmethod
    def prepare(rows: list[ImportRow]) -> list[ImportRow]:
        return rows

    async def store(self, rows: list[ImportRow], rejections: list[Rejection]) -> None:
        await asyncio.sleep(0)  # the database's turn: the next batch is parsed meanwhile
        self.rejected += len(rejections)
        self._rejections += rejections
        if rows:
            self.batches.append(rows)
        contacts = FakeContacts(self._t)
        for row in rows:
            if (contact_id := await contacts.id_of(row.contact.email)) is None:
                await contacts.insert(row.contact)
                self.inserted += 1
            else:
                await contacts.write(contact_id, {**(await contacts.get(contact_id)).model_dump(),
                                                  **row.contact.model_dump(include={"email", *row.given})})
                self.updated += 1

    async def rejections(self, batch_size: int = 2) -> AsyncIterator[list[Rejection]]:
        ordered = sorted(self._rejections, key=lambda r: r.line)
        for start in range(0, len(ordered), batch_size):
            yield ordered[start:start + batch_size]


class FakeImports:
    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self.opened: list[FakeImport] = []

    @asynccontextmanager
    async def open(self) -> AsyncIterator[FakeImport]:
        job = FakeImport(self._t)
        self.opened.append(job)
        yield job


def dependencies(**settings: Any) -> dict[str, Any]:
    """What bootstrap.adapters makes, in memory over one set of `tables`, by the same
    names; `settings` as given, the defaults otherwise."""
    tables = Tables()
    contacts, uow = FakeContacts(tables), FakeUnitOfWork(FakeTransaction(tables))
    return {
        "tables": tables, "settings": Settings(**settings), "publisher": FakePublisher(), "pool": None,
        "contacts": contacts, "uow": uow, "audience": Audience(contacts, uow), "segments": FakeSegments(tables),
        "evaluations": FakeEvaluations(tables), "history": FakeHistory(tables), "imports": FakeImports(tables),
    }
