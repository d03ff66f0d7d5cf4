"""A contact import in Postgres, one batch at a time, all in one transaction.

New contacts (a new list: the common, large case) are COPYed straight into `contacts`,
with their contact.changed events bundled in one outbox row a batch, until a batch meets
an email that exists. From then on each batch is COPYed into a staging table and upserted
from there: existing contacts locked and updated (only the fields each row gives;
attributes merged), the rest inserted. Rejections are kept aside, also by COPY, so that the report can be read back,
however long, after the commit.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from contracts import topics
from contracts.codec import ATTRIBUTES_BYTES, contact_changed_values
from segment_svc.contacts import ContactTooLarge, new_contact_ids
from segment_svc.imports import ImportRow, Rejection
from servicekit import outbox

_RESTATE_AFTER = 10_000  # contacts an import changes before it refreshes the planner's statistics
_COLUMNS = ["id", "email", "first_name", "last_name", "timezone", "marketing_opt_in", "attributes"]

_TEMPORARY_TABLES = """
CREATE TEMP TABLE import_staging (
    id               uuid    NOT NULL,
    email            text    NOT NULL,
    first_name       text,
    last_name        text,
    timezone         text,
    marketing_opt_in boolean,
    attributes       jsonb   NOT NULL,
    given            text[]  NOT NULL,
    line             bigint  NOT NULL
) ON COMMIT DROP;
DROP TABLE IF EXISTS import_rejections;
CREATE TEMP TABLE import_rejections (line bigint NOT NULL, reason text NOT NULL);
"""

# Locked in id order, so that `before` in the update reads the values it replaces.
_LOCK_EXISTING = """
SELECT count(*) FROM (SELECT 1 FROM contacts c JOIN import_staging s USING (email) ORDER BY c.id FOR UPDATE OF c) locked
"""

_UPDATE_EXISTING = """
UPDATE contacts c SET
    first_name = CASE WHEN 'first_name' = ANY(s.given) THEN s.first_name ELSE c.first_name END,
    last_name = CASE WHEN 'last_name' = ANY(s.given) THEN s.last_name ELSE c.last_name END,
    timezone = CASE WHEN 'timezone' = ANY(s.given) THEN s.timezone ELSE c.timezone END,
    marketing_opt_in = CASE WHEN 'marketing_opt_in' = ANY(s.given) THEN s.marketing_opt_in
                            ELSE c.marketing_opt_in END,
    attributes = c.attributes || s.attributes,
    updated_at = now()
FROM import_staging s, contacts before
WHERE c.email = s.email AND before.id = c.id
RETURNING c.id, c.email, c.marketing_opt_in, c.change_seq,
          c.marketing_opt_in <> before.marketing_opt_in AS consent_changed
"""

# Attributes an update would merge beyond what a recipient may carry: those rows are
# rejected, not stored (the contact keeps what it had).
_TOO_LARGE_MERGED = """
DELETE FROM import_staging s USING contacts c
WHERE c.email = s.email AND octet_length((c.attributes || s.attributes)::text) > $1
RETURNING s.line, octet_length((c.attributes || s.attributes)::text) AS size
"""

# One that conflicts now was created by another request since the lock.
_ADD_NEW = """
INSERT INTO contacts (id, email, first_name, last_name, timezone, marketing_opt_in, attributes)
SELECT id, email, first_name, last_name, timezone, marketing_opt_in, attributes
FROM import_staging
ON CONFLICT (email) DO NOTHING
RETURNING id, email, marketing_opt_in, change_seq
"""


class ContactImport:
    """One import on one connection: `store` batches inside `transaction()`, then read the
    `rejections` back once it has committed."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.inserted = self.updated = self.rejected = 0
        self._updating = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._connection.transaction():
            await self._connection.execute(_TEMPORARY_TABLES)
            yield
        if self.inserted + self.updated >= _RESTATE_AFTER:
            # Fresh statistics now, not when autovacuum gets to it: criteria planned on
            # yesterday's figures pick the wrong plan (see the README).
            await self._connection.execute("ANALYZE contacts")

    @staticmethod
    def prepare(rows: list[ImportRow]) -> "Prepared":
        """A batch made ready for `store` (no database: done while the one before is stored)."""
        return prepare(rows)

    async def store(self, batch: "Prepared", rejections: list[Rejection]) -> None:
        """Upserts a batch whose emails are distinct (`imports.Batches` sees to it)."""
        if rejections:
            await self._reject(rejections)
        if not batch.rows:
            return
        if not self._updating:
            try:
                async with self._connection.transaction():  # a savepoint
                    await self._connection.copy_records_to_table("contacts", columns=_COLUMNS, records=batch.records)
                    await outbox.add_bundle(self._connection, topics.CONTACT_CHANGED, batch.news)
                self.inserted += len(batch.records)
                return
            except asyncpg.UniqueViolationError:
                # Some exist: this batch, and the rest of the file, take the careful way
                # (a file that updates once mostly updates).
                self._updating = True
        await self._upsert(batch.rows, batch.records)

    async def _upsert(self, rows: list[ImportRow], records: list[tuple]) -> None:
        connection = self._connection
        await connection.execute("TRUNCATE import_staging")
        await connection.copy_records_to_table(
            "import_staging", columns=[*_COLUMNS, "given", "line"],
            records=[(*record, row.given, row.line) for row, record in zip(rows, records, strict=True)],
        )
        updated = []
        if await connection.fetchval(_LOCK_EXISTING):
            if too_large := await connection.fetch(_TOO_LARGE_MERGED, ATTRIBUTES_BYTES):
                await self._reject([Rejection(r["line"], f"$.attributes: {ContactTooLarge(r['size'])}")
                                    for r in too_large])
                refused = {r["line"] for r in too_large}
                rows = [row for row in rows if row.line not in refused]
            updated = await connection.fetch(_UPDATE_EXISTING)
        added = await connection.fetch(_ADD_NEW) if len(updated) < len(rows) else []
        told = [r for r in updated if r["consent_changed"]] + added
        if told:
            await self._tell_the_mailer(told)
        if len(updated) + len(added) < len(rows):
            done = {r["email"] for r in updated} | {r["email"] for r in added}
            await self._reject([Rejection(row.line, "created by another request during the import")
                                for row in rows if row.contact.email not in done])
        self.inserted += len(added)
        self.updated += len(updated)

    async def _tell_the_mailer(self, written: list[asyncpg.Record]) -> None:
        """Each contact as the statement left it, with the change sequence it was given."""
        changes = contact_changed_values(
            [(r["id"], r["email"], r["marketing_opt_in"], r["change_seq"]) for r in written], datetime.now(UTC))
        await outbox.add_bundle(self._connection, topics.CONTACT_CHANGED, outbox.bundle(changes))

    async def _reject(self, rejections: list[Rejection]) -> None:
        self.rejected += len(rejections)
        await self._connection.copy_records_to_table(
            "import_rejections", columns=["line", "reason"],
            records=[(rejection.line, rejection.reason) for rejection in rejections],
        )

    async def rejections(self, batch_size: int = 1000) -> AsyncIterator[list[Rejection]]:
        async with self._connection.transaction(readonly=True):
            cursor = await self._connection.cursor("SELECT line, reason FROM import_rejections ORDER BY line")
            while records := await cursor.fetch(batch_size):
                yield [Rejection(record["line"], record["reason"]) for record in records]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch made ready while the one before is stored: its rows as `contacts` columns
    with new ids, and, for when they all turn out new, their contact.changed events as one
    outbox bundle (the mailer must know every contact's consent)."""

    rows: list[ImportRow]
    records: list[tuple]
    news: bytes


def prepare(rows: list[ImportRow]) -> Prepared:
    """The rows as `contacts` columns (ids as text: COPY takes them so); consent not given
    is false for a new contact (an existing one keeps its own: the update reads `given`).
    A new contact's change sequence is 0 (migration 0007): the bundle needs no database."""
    contacts = [row.contact for row in rows]
    records = [(contact_id, c.email, c.first_name, c.last_name, c.timezone, c.marketing_opt_in, c.attributes)
               for contact_id, c in zip(new_contact_ids(len(rows)), contacts, strict=True)]
    news = contact_changed_values([(r[0], r[1], r[5], 0) for r in records], datetime.now(UTC))
    return Prepared(rows, records, outbox.bundle(news))


class ContactImports:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def open(self) -> AsyncIterator[ContactImport]:
        async with self._pool.acquire() as connection:
            try:
                yield ContactImport(connection)
            finally:  # temporary tables outlive the transaction on a pooled connection
                await connection.execute("DROP TABLE IF EXISTS import_rejections")
