"""A contact import in Postgres: rows arrive in batches, are COPYed into a staging table
and upserted by email from there, all in one transaction; rejections are kept aside (also
by COPY) so that the report can be read back, however long, after the commit.

Each new contact, and each whose consent changes, gets its contact.changed outbox row
written by the same statement (the mailer must know every contact's consent; building a
million events in Python would cost more than the import). A test decodes those rows
with the contracts' codec.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from contracts import topics
from segment_svc.imports import ImportRow, Rejection
from servicekit.outbox import headers_for

_STAGING = """
CREATE TEMP TABLE import_staging (
    line             bigint  NOT NULL,
    email            text    NOT NULL,
    first_name       text,
    last_name        text,
    timezone         text,
    marketing_opt_in boolean,
    attributes       jsonb   NOT NULL,
    given            text[]  NOT NULL,
    added            boolean NOT NULL DEFAULT false
) ON COMMIT DROP;
DROP TABLE IF EXISTS import_rejections;
CREATE TEMP TABLE import_rejections (line bigint NOT NULL, reason text NOT NULL);
"""
_STAGED_COLUMNS = ["line", "email", "first_name", "last_name", "timezone", "marketing_opt_in", "attributes", "given"]

# The event of contracts.events.ContactChanged, as its codec writes it, for each row of `told`.
_TELL_THE_MAILER = """
INSERT INTO outbox (topic, key, value, headers)
SELECT $1, convert_to(id::text, 'UTF8'),
       convert_to(json_build_object(
           'event_id', gen_random_uuid(), 'version', 1, 'occurred_at', statement_timestamp(),
           'event_type', 'contact.changed', 'contact_id', id, 'email', email,
           'marketing_opt_in', marketing_opt_in, 'deleted', false)::text, 'UTF8'),
       $2::jsonb
FROM told
"""

_ADD_NEW = f"""
WITH added AS (
    INSERT INTO contacts (id, email, first_name, last_name, timezone, marketing_opt_in, attributes)
    SELECT gen_random_uuid(), email, first_name, last_name, timezone, coalesce(marketing_opt_in, false), attributes
    FROM import_staging
    ON CONFLICT (email) DO NOTHING
    RETURNING id, email, marketing_opt_in
), marked AS (
    UPDATE import_staging SET added = true FROM added WHERE import_staging.email = added.email
), told AS (SELECT * FROM added), outboxed AS ({_TELL_THE_MAILER} RETURNING 1)
SELECT count(*) FROM added
"""

# Locked first, in id order, so that `before` below reads the values this transaction replaces.
_LOCK_EXISTING = """
SELECT 1 FROM contacts c JOIN import_staging s USING (email) WHERE NOT s.added ORDER BY c.id FOR UPDATE OF c
"""

_UPDATE_EXISTING = f"""
WITH changed AS (
    UPDATE contacts c SET
        first_name = CASE WHEN 'first_name' = ANY(s.given) THEN s.first_name ELSE c.first_name END,
        last_name = CASE WHEN 'last_name' = ANY(s.given) THEN s.last_name ELSE c.last_name END,
        timezone = CASE WHEN 'timezone' = ANY(s.given) THEN s.timezone ELSE c.timezone END,
        marketing_opt_in = CASE WHEN 'marketing_opt_in' = ANY(s.given) THEN s.marketing_opt_in
                                ELSE c.marketing_opt_in END,
        attributes = c.attributes || s.attributes,
        updated_at = now()
    FROM import_staging s, contacts before
    WHERE NOT s.added AND c.email = s.email AND before.id = c.id
    RETURNING c.id, c.email, c.marketing_opt_in, before.marketing_opt_in AS was_opted_in
), told AS (SELECT * FROM changed WHERE marketing_opt_in <> was_opted_in), outboxed AS ({_TELL_THE_MAILER} RETURNING 1)
SELECT count(*) FROM changed
"""

# Rows neither added nor updated: their contact was deleted by someone else mid-import.
_VANISHED = """
SELECT line FROM import_staging s WHERE NOT s.added AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.email = s.email)
"""


class ContactImport:
    """One import on one connection: `store` batches inside `transaction()`, then read the
    `rejections` back once it has committed."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._headers = headers_for(topics.CONTACT_CHANGED)
        self.inserted = self.updated = self.rejected = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._connection.transaction():
            await self._connection.execute(_STAGING)
            yield

    async def store(self, rows: list[ImportRow], rejections: list[Rejection]) -> None:
        """Upserts a batch whose emails are distinct (`imports.Batches` sees to it)."""
        if rejections:
            await self._reject(rejections)
        if not rows:
            return
        connection = self._connection
        await connection.execute("TRUNCATE import_staging")
        await connection.copy_records_to_table("import_staging", columns=_STAGED_COLUMNS, records=[
            (row.line, row.contact.email, row.contact.first_name, row.contact.last_name, row.contact.timezone,
             row.contact.marketing_opt_in if "marketing_opt_in" in row.given else None,
             row.contact.attributes, row.given)
            for row in rows
        ])
        inserted = await connection.fetchval(_ADD_NEW, topics.CONTACT_CHANGED, self._headers)
        updated = 0
        if inserted < len(rows):
            await connection.execute(_LOCK_EXISTING)
            updated = await connection.fetchval(_UPDATE_EXISTING, topics.CONTACT_CHANGED, self._headers)
            if inserted + updated < len(rows):
                vanished = await connection.fetch(_VANISHED)
                await self._reject([Rejection(r["line"], "the contact was deleted during the import") for r in vanished])
        self.inserted += inserted
        self.updated += updated

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
