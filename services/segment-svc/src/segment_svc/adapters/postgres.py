"""Contacts, segments and evaluations in Postgres (schema `segment`)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from segment_svc.contacts import (
    Contact,
    ContactDraft,
    ContactNotFound,
    ContactTooLarge,
    EmailTaken,
    new_contact_id,
    stored_json_bytes,
)
from segment_svc.criteria import Group, compile_criteria
from segment_svc.segments import Preview, Segment, SegmentDraft, SegmentNotFound
from segment_svc.send_time import HOURS, K_CONTACT, Evidence, hours_from_utc
from servicekit.database import keyset_page
from servicekit.uow import Transaction

_CONTACT = "id, email, first_name, last_name, timezone, marketing_opt_in, attributes, created_at, updated_at"
# A write also returns the change sequence the database gave it (migration 0007), for its
# contact.changed: the recipient JSON carries the same number.
_WRITTEN = f"{_CONTACT}, change_seq"
_SEGMENT = "id, name, criteria, created_at, updated_at"
# What an evaluation reads: the recipient JSON each contact carries (migration 0005).
_RECIPIENT = "recipient, marketing_opt_in, id"


def _contact(row: asyncpg.Record) -> Contact:
    fields = dict(row)
    fields.pop("change_seq", None)  # the mailer's, not the API's
    return Contact.model_validate(fields, context=_STORED)


_STORED = {"stored": True}


class ContactRepository:
    """Contacts, on the pool (reads) or on a unit of work's connection (writes: the
    handlers emit their contact.changed in the same transaction)."""

    def __init__(self, db: asyncpg.Pool | asyncpg.Connection) -> None:
        self._db = db

    async def insert(self, draft: ContactDraft) -> tuple[Contact, int]:
        """The new contact, and the change sequence the database gave it."""
        try:
            row = await self._db.fetchrow(
                f"INSERT INTO contacts (id, email, first_name, last_name, timezone, marketing_opt_in, attributes)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_WRITTEN}",
                new_contact_id(), draft.email, draft.first_name, draft.last_name, draft.timezone,
                draft.marketing_opt_in, draft.attributes,
            )
        except asyncpg.UniqueViolationError:
            raise EmailTaken(draft.email) from None
        except asyncpg.CheckViolationError:  # the recipient it makes (migration 0008)
            raise ContactTooLarge(stored_json_bytes(draft.attributes)) from None
        return _contact(row), row["change_seq"]

    async def get(self, contact_id: UUID) -> Contact:
        return await self._one(contact_id)

    async def lock(self, contact_id: UUID) -> Contact:
        """The contact as stored, locked until the transaction ends."""
        return await self._one(contact_id, " FOR UPDATE")

    async def _one(self, contact_id: UUID, lock: str = "") -> Contact:
        row = await self._db.fetchrow(f"SELECT {_CONTACT} FROM contacts WHERE id = $1{lock}", contact_id)
        if row is None:
            raise ContactNotFound(contact_id)
        return _contact(row)

    async def write(self, contact_id: UUID, fields: dict[str, Any]) -> tuple[Contact, int]:
        """Stores every field of the contact (`contacts.patched`); the contact as written,
        and its new change sequence."""
        try:
            row = await self._db.fetchrow(
                "UPDATE contacts SET email = $2, first_name = $3, last_name = $4, timezone = $5,"
                " marketing_opt_in = $6, attributes = $7, updated_at = now()"
                f" WHERE id = $1 RETURNING {_WRITTEN}",
                contact_id, fields["email"], fields["first_name"], fields["last_name"],
                fields["timezone"], fields["marketing_opt_in"], fields["attributes"],
            )
        except asyncpg.UniqueViolationError:
            raise EmailTaken(fields["email"]) from None
        except asyncpg.CheckViolationError:
            raise ContactTooLarge(stored_json_bytes(fields["attributes"])) from None
        if row is None:
            raise ContactNotFound(contact_id)
        return _contact(row), row["change_seq"]

    async def delete(self, contact_id: UUID) -> None:
        if await self._db.execute("DELETE FROM contacts WHERE id = $1", contact_id) == "DELETE 0":
            raise ContactNotFound(contact_id)

    async def id_of(self, email: str) -> UUID | None:
        return await self._db.fetchval("SELECT id FROM contacts WHERE email = $1", email)

    async def page(self, after: tuple | None, limit: int) -> list[Contact]:
        """In id order, which is creation order (ids are time-ordered); the cursor's
        creation time is not needed."""
        rows = await self._db.fetch(
            f"SELECT {_CONTACT} FROM contacts WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
            after[1] if after else None, limit,
        )
        return [_contact(row) for row in rows]

    async def search(self, q: str, after: tuple | None, limit: int) -> list[Contact]:
        """Contacts whose email, first name, last name or "first last" starts with `q`,
        whatever its case, in the order and after the cursor of `page`; `q`'s %, _ and \\
        are taken literally. Read along the primary key until the page is full (no index of
        its own: see migration 0010)."""
        rows = await self._db.fetch(
            f"SELECT {_CONTACT} FROM contacts WHERE (email LIKE lower($1) OR lower(first_name) LIKE lower($1)"
            " OR lower(last_name) LIKE lower($1) OR lower(first_name || ' ' || last_name) LIKE lower($1))"
            " AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
            prefix_pattern(q), after[1] if after else None, limit,
        )
        return [_contact(row) for row in rows]


def prefix_pattern(text: str) -> str:
    """The LIKE pattern of what starts with `text`, its wildcards and escapes literal."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@asynccontextmanager
async def _connection(db: asyncpg.Pool | asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as connection:
            yield connection
    else:
        yield db


class SegmentTransaction(Transaction):
    """One unit of work of segment-svc: its contacts, and the outbox (`emit`)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        super().__init__(connection)
        self.contacts = ContactRepository(connection)


def _segment(row: asyncpg.Record) -> Segment:
    return Segment.model_validate(dict(row))


class SegmentRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, draft: SegmentDraft) -> Segment:
        row = await self._pool.fetchrow(
            f"INSERT INTO segments (id, name, criteria) VALUES ($1, $2, $3) RETURNING {_SEGMENT}",
            uuid4(), draft.name, draft.criteria.model_dump(mode="json"),
        )
        return _segment(row)

    async def get(self, segment_id: UUID) -> Segment:
        row = await self._pool.fetchrow(f"SELECT {_SEGMENT} FROM segments WHERE id = $1", segment_id)
        if row is None:
            raise SegmentNotFound(segment_id)
        return _segment(row)

    async def update(self, segment_id: UUID, draft: SegmentDraft) -> Segment:
        row = await self._pool.fetchrow(
            f"UPDATE segments SET name = $2, criteria = $3, updated_at = now() WHERE id = $1 RETURNING {_SEGMENT}",
            segment_id, draft.name, draft.criteria.model_dump(mode="json"),
        )
        if row is None:
            raise SegmentNotFound(segment_id)
        return _segment(row)

    async def delete(self, segment_id: UUID) -> None:
        if await self._pool.execute("DELETE FROM segments WHERE id = $1", segment_id) == "DELETE 0":
            raise SegmentNotFound(segment_id)

    async def page(self, after: tuple | None, limit: int) -> list[Segment]:
        rows = await keyset_page(self._pool, f"SELECT {_SEGMENT} FROM segments WHERE true", after, limit)
        return [_segment(row) for row in rows]

    async def preview(self, criteria: Group, sample_size: int = 10) -> Preview:
        where, values = compile_criteria(criteria, datetime.now(UTC))
        async with self._pool.acquire() as connection:
            counts = await connection.fetchrow(
                f"SELECT count(*) AS count, count(*) FILTER (WHERE marketing_opt_in) AS opted_in"
                f" FROM contacts WHERE {where}", *values,
            )
            rows = await connection.fetch(
                f"SELECT {_CONTACT} FROM contacts WHERE {where} ORDER BY id LIMIT {int(sample_size)}", *values
            )
        sample = [_contact(row).model_dump(mode="json") for row in rows]
        return Preview(count=counts["count"], opted_in=counts["opted_in"], sample=sample)


class Evaluations:
    """Streams a segment's matches with a server-side cursor and remembers evaluated runs."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def already_evaluated(self, run_id: UUID) -> bool:
        return await self._pool.fetchval("SELECT true FROM evaluations WHERE run_id = $1", run_id) or False

    async def matches(
        self, criteria: Group, batch_size: int, now: datetime | None = None
    ) -> AsyncIterator[list[asyncpg.Record]]:
        where, values = compile_criteria(criteria, now or datetime.now(UTC))
        async with self._pool.acquire() as connection, connection.transaction(readonly=True):
            cursor = await connection.cursor(
                f"SELECT {_RECIPIENT} FROM contacts WHERE {where} ORDER BY id", *values
            )
            # The next batch is read while the caller publishes this one: the database
            # (the slower side, writing the JSON) never waits for Kafka.
            following = asyncio.ensure_future(cursor.fetch(batch_size))
            try:
                while rows := await following:
                    following = asyncio.ensure_future(cursor.fetch(batch_size))
                    yield rows
            finally:
                if not following.done():
                    following.cancel()
                await asyncio.gather(following, return_exceptions=True)

    async def record(self, run_id: UUID, campaign_id: UUID, segment_id: UUID, total: int, opted_in: int) -> None:
        await self._pool.execute(
            "INSERT INTO evaluations (run_id, campaign_id, segment_id, total_matched, opted_in_matched)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id) DO NOTHING",
            run_id, campaign_id, segment_id, total, opted_in,
        )


_MEMBERS = "members AS (SELECT id, timezone IS NULL AS zoneless FROM contacts WHERE {where})"


def _local_hour(zoneless: str, shift: str) -> str:
    """engagement_hours.hour_of_week (`e`), moved by `shift` hours for a contact without a
    timezone (counted in UTC)."""
    return f"CASE WHEN {zoneless} THEN (e.hour_of_week + {shift} + {HOURS}) % {HOURS} ELSE e.hour_of_week END"

_RECORD_ENGAGEMENT = """
WITH first AS (INSERT INTO engagements_counted (send_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1),
local AS (SELECT c.id, $4::timestamptz AT TIME ZONE coalesce(c.timezone, 'UTC') AS at FROM contacts c, first WHERE c.id = $3)
INSERT INTO engagement_hours (contact_id, hour_of_week, events)
SELECT id, (extract(isodow FROM at)::int - 1) * 24 + extract(hour FROM at)::int, 1 FROM local
ON CONFLICT (contact_id, hour_of_week) DO UPDATE SET events = engagement_hours.events + 1
"""


class EngagementHistory:
    """Opens and clicks by hour of week in each contact's local time (UTC for a contact
    without a timezone), and the sums a send-time suggestion rests on."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, send_id: UUID, kind: str, contact_id: UUID, at: datetime) -> None:
        await self._pool.execute(_RECORD_ENGAGEMENT, send_id, kind, contact_id, at)

    async def evidence(self, criteria: Group, zone: str = "UTC") -> Evidence:
        """The segment's history, and everyone's. Contacts without a timezone were
        counted in UTC; they are read in `zone` (the campaign's, which they are sent in),
        shifted by its offset from UTC now."""
        where, values = compile_criteria(criteria, datetime.now(UTC))
        k, shift = f"${len(values) + 1}::float8", f"${len(values) + 2}::int"
        members = _MEMBERS.format(where=where)
        offset = hours_from_utc(zone)
        async with self._pool.acquire() as connection:
            hours = await connection.fetch(
                f"WITH {members}, history AS (SELECT {_local_hour('m.zoneless', shift)} AS hour_of_week, e.events,"
                f"   sum(e.events) OVER (PARTITION BY e.contact_id) AS total"
                f"   FROM engagement_hours e JOIN members m ON m.id = e.contact_id)"
                f" SELECT hour_of_week, sum(events)::bigint AS events, sum(events / (total + {k})) AS share"
                f" FROM history GROUP BY hour_of_week", *values, K_CONTACT, offset,
            )
            summary = await connection.fetchrow(
                f"WITH {members}, totals AS (SELECT sum(e.events) AS total FROM engagement_hours e"
                f"   JOIN members m ON m.id = e.contact_id GROUP BY e.contact_id)"
                f" SELECT (SELECT count(*) FROM members) AS contacts, count(*) AS with_history,"
                f"   coalesce(sum({k} / (total + {k})), 0) AS weight FROM totals", *values, K_CONTACT,
            )
            everyone = await connection.fetch(
                "SELECT hour_of_week, sum(events)::bigint AS events FROM engagement_hours GROUP BY hour_of_week"
            ) if offset == 0 else await connection.fetch(  # joined to the contacts only when it moves anything
                f"SELECT {_local_hour('c.timezone IS NULL', '$1::int')} AS hour_of_week, sum(e.events)::bigint AS events"
                f" FROM engagement_hours e JOIN contacts c ON c.id = e.contact_id GROUP BY 1", offset,
            )
        segment_events, shares, global_events = [0] * HOURS, [0.0] * HOURS, [0] * HOURS
        for row in hours:
            segment_events[row["hour_of_week"]], shares[row["hour_of_week"]] = row["events"], row["share"]
        for row in everyone:
            global_events[row["hour_of_week"]] = row["events"]
        return Evidence(summary["contacts"], summary["with_history"], segment_events, shares, summary["weight"],
                        global_events)

    async def hours_of(self, contact_ids: list[UUID]) -> dict[UUID, dict[int, int]]:
        rows = await self._pool.fetch(
            "SELECT contact_id, hour_of_week, events FROM engagement_hours WHERE contact_id = ANY($1::uuid[])",
            contact_ids,
        )
        counts: dict[UUID, dict[int, int]] = {}
        for row in rows:
            counts.setdefault(row["contact_id"], {})[row["hour_of_week"]] = row["events"]
        return counts
