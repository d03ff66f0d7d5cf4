"""Runs, recipients and sends in Postgres (schema `scheduler`): SQL only.

Each repository is bound to what runs its statements: the connection of a unit of work
(`SchedulerTransaction`), or the pool, where one statement commits on its own (the
due-poller's overdue sends and releases, the health figures)."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from contracts.events import Recipient, SegmentEvaluated
from scheduler.domain import Run, ScheduledSend
from servicekit.uow import Transaction, UnitOfWork

Database = asyncpg.Connection | asyncpg.Pool

_RUN = (
    "run_id, campaign_id, steps, start_date, start_time_of_day, timezone,"
    " send_in_recipient_timezone, activated_at"
)
# What send.due needs of an emitted send. The sends are picked as an array of keys, and
# each recipient looked up by its key: a join let the planner, misled by the unknown
# LIMIT of the pick, hash whole tables (run_recipients, sends) on every claim.
_EMITTED = (
    "s.send_id, s.run_id, s.campaign_id, s.contact_id, s.step_index, s.due_at, s.attempt,"
    " (SELECT r.recipient FROM run_recipients r WHERE r.run_id = s.run_id AND r.contact_id = s.contact_id)"
    " AS recipient_json"
)
_RECIPIENT_COLUMNS = ["run_id", "contact_id", "recipient", "planned"]
_SEND_COLUMNS = ["send_id", "run_id", "campaign_id", "contact_id", "step_index", "due_at"]


class Runs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, run: Run) -> None:
        await self._db.execute(
            f"INSERT INTO runs ({_RUN}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run_id) DO NOTHING",
            run.run_id, run.campaign_id, run.steps_json(), run.start_date, run.start_time_of_day,
            run.timezone, run.send_in_recipient_timezone, run.activated_at,
        )

    async def load(self, run_id: UUID) -> Run | None:
        row = await self._db.fetchrow(f"SELECT {_RUN} FROM runs WHERE run_id = $1", run_id)
        return Run.from_row(row) if row else None

    async def count_sends(self, run_id: UUID, added: int) -> None:
        await self._db.execute("UPDATE runs SET sends = sends + $2 WHERE run_id = $1", run_id, added)

    async def totals_to_announce(self, run_id: UUID, emails: int, added: int = 0) -> tuple[int, int] | None:
        """(recipients, sends) to announce: once a last batch and every batch number before
        it are stored (however many batch events came: a run evaluated twice may have
        more), and again when sends are `added` to a run already announced (a batch of a
        second evaluation whose recipients the first had not sent).

        Takes the run's row lock, so that of batches recorded side by side the last to
        commit sees all the others (each statement after the lock reads what is committed)."""
        await self._db.execute("SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE", run_id)
        due = await self._db.fetchval(
            "SELECT (NOT r.scheduled_published OR $2 > 0) AND EXISTS (SELECT 1 FROM evaluated_batches l"
            "   WHERE l.run_id = r.run_id AND l.is_last AND (SELECT count(DISTINCT b.batch_no) FROM evaluated_batches b"
            "     WHERE b.run_id = r.run_id AND b.batch_no <= l.batch_no) = l.batch_no + 1)"
            " FROM runs r WHERE r.run_id = $1",
            run_id, added,
        )
        if not due:
            return None
        sends = await self._db.fetchval(
            "UPDATE runs SET scheduled_published = true WHERE run_id = $1 RETURNING sends", run_id
        )
        # Every recipient gets one send per email of the flow, or none when already there.
        return sends // emails, sends


class Batches:
    def __init__(self, db: asyncpg.Connection) -> None:
        self._db = db

    async def record(self, event: SegmentEvaluated) -> bool | None:
        """None when this very event was recorded before (Kafka redelivered it); else
        whether its batch number is new to the run (False: segment-svc evaluated the run
        again after a crash, and the contacts may have moved between batches)."""
        return await self._db.fetchval(
            "INSERT INTO evaluated_batches (run_id, batch_no, is_last, event_id) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING"
            " RETURNING NOT EXISTS (SELECT 1 FROM evaluated_batches WHERE run_id = $1 AND batch_no = $2)",
            event.run_id, event.batch_no, event.is_last, event.event_id,
        )


class Recipients:
    def __init__(self, db: asyncpg.Connection) -> None:
        self._db = db

    async def add(self, run_id: UUID, recipients: list[Recipient], planned: bool, new: bool) -> list[Recipient]:
        """Stores the recipients the run lacks and returns them. `new` (the batch number is
        new) tries a plain COPY first; otherwise, or when one is there already, only the
        missing go in, by contact."""
        records = [(run_id, r.contact_id, r.model_dump_json(), planned) for r in recipients]
        if new and await _copy(self._db, "run_recipients", _RECIPIENT_COLUMNS, records):
            return list(recipients)
        added = set(await _insert_missing(self._db, "run_recipients", _RECIPIENT_COLUMNS, records,
                                          returning="contact_id"))
        return [r for r in recipients if r.contact_id in added]

    async def plan_waiting(self, run_id: UUID) -> list[Recipient]:
        """Marks planned, and returns, the recipients that arrived before their run."""
        rows = await self._db.fetch(
            "UPDATE run_recipients SET planned = true WHERE run_id = $1 AND NOT planned RETURNING recipient", run_id
        )
        return [Recipient.model_validate_json(row["recipient"]) for row in rows]


class CampaignStates:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def follow(self, campaign_id: UUID, state: str, status_seq: int | None,
                     unversioned_wins: bool = True) -> bool:
        """Records the campaign's state unless a newer one (a higher status sequence) is
        known, or it is completed. A state without a sequence (from before sequences) wins
        when `unversioned_wins`, and is otherwise only the first known. True when it took."""
        return bool(await self._db.fetchval(
            "INSERT INTO campaign_states (campaign_id, state, status_seq) VALUES ($1, $2, COALESCE($3, 0))"
            " ON CONFLICT (campaign_id) DO UPDATE SET state = EXCLUDED.state,"
            "   status_seq = GREATEST(campaign_states.status_seq, EXCLUDED.status_seq)"
            " WHERE campaign_states.state <> 'completed'"
            "   AND (campaign_states.status_seq < $3 OR ($3::bigint IS NULL AND $4))"
            " RETURNING true",
            campaign_id, state, status_seq, unversioned_wins,
        ))


class Sends:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, sends: list[ScheduledSend]) -> int:
        """Stores the sends not there yet (a batch published again); how many went in."""
        records = [(s.send_id, s.run_id, s.campaign_id, s.contact_id, s.step_index, s.due_at) for s in sends]
        if not records:
            return 0
        if await _copy(self._db, "sends", _SEND_COLUMNS, records):
            return len(records)
        return len(await _insert_missing(self._db, "sends", _SEND_COLUMNS, records))

    async def refresh_statistics(self) -> None:
        """The planner's view of sends after a bulk load (see migrations/0002)."""
        await self._db.execute("ANALYZE sends, run_recipients")

    async def cancel_pending(self, campaign_id: UUID) -> int:
        status = await self._db.execute(
            "UPDATE sends SET state = 'cancelled' WHERE campaign_id = $1 AND state = 'pending'", campaign_id
        )
        return int(status.split()[-1])

    async def retry(self, retries: list[tuple[UUID, int, datetime]]) -> None:
        """Deferred at (send, attempt): pending again at its retry time, the next attempt."""
        await self._db.execute(
            "UPDATE sends SET state = 'pending', due_at = o.retry_at, attempt = o.attempt + 1"
            " FROM unnest($1::uuid[], $2::int[], $3::timestamptz[]) AS o(send_id, attempt, retry_at)"
            " WHERE sends.send_id = o.send_id AND sends.attempt = o.attempt AND sends.state = 'emitted'",
            *zip(*retries, strict=True),
        )

    async def hold(self, held: list[tuple[UUID, int]]) -> None:
        """Held at (send, attempt): pending again at the same attempt."""
        await self._db.execute(
            "UPDATE sends SET state = 'pending'"
            " FROM unnest($1::uuid[], $2::int[]) AS o(send_id, attempt)"
            " WHERE sends.send_id = o.send_id AND sends.attempt = o.attempt AND sends.state = 'emitted'",
            *zip(*held, strict=True),
        )

    async def finish(self, send_ids: list[UUID]) -> None:
        """Done, also when the emission had been undone (released to pending): the row goes.
        Nothing reads a finished send again (its recipient's row keeps a second evaluation
        from planning it anew), and a delete costs PostgreSQL less than half of an update that
        moves the row out of the partial indexes (a new row version and its index entries)."""
        await self._db.execute(
            "DELETE FROM sends WHERE send_id = ANY($1::uuid[]) AND state IN ('pending', 'emitted')", send_ids
        )

    async def due_demand(self, most: int) -> dict[UUID, tuple[int, int]]:
        """Per run of an active campaign: (sends in flight, sends due but not emitted, at most `most`).
        The due ones are read in the index's order (`ORDER BY due_at`): unordered, the
        planner took a table scan for the first `most`, and they sit behind every send
        the run has already emitted."""
        rows = await self._db.fetch(
            "SELECT ru.run_id,"
            " (SELECT count(*) FROM sends e WHERE e.run_id = ru.run_id AND e.state = 'emitted') AS in_flight,"
            " (SELECT count(*) FROM (SELECT 1 FROM sends p WHERE p.run_id = ru.run_id AND p.state = 'pending'"
            "   AND p.due_at <= now() ORDER BY p.due_at LIMIT $1) d) AS due"
            " FROM campaign_states cs JOIN runs ru ON ru.campaign_id = cs.campaign_id WHERE cs.state = 'active'",
            most,
        )
        return {row["run_id"]: (row["in_flight"], row["due"]) for row in rows}

    async def claim(self, quotas: dict[UUID, int]) -> list[Mapping[str, Any]]:
        """Marks up to its quota of each run's due sends `emitted`, earliest first, and
        returns them with their recipients (rows named as in `_EMITTED`); other instances
        skip the locked rows."""
        return await self._db.fetch(
            "UPDATE sends s SET state = 'emitted', emitted_at = now()"
            " WHERE s.send_id = ANY(ARRAY(SELECT picked.send_id FROM unnest($1::uuid[], $2::int[]) AS q(run_id, quota)"
            "   CROSS JOIN LATERAL (SELECT p.send_id FROM sends p WHERE p.run_id = q.run_id AND p.state = 'pending'"
            "     AND p.due_at <= now() ORDER BY p.due_at LIMIT q.quota FOR UPDATE SKIP LOCKED) picked))"
            f" RETURNING {_EMITTED}",
            list(quotas), list(quotas.values()),
        )

    async def overdue(self, timeout_seconds: float, limit: int) -> list[Mapping[str, Any]]:
        """Sends emitted longer ago than the timeout with no outcome yet, marked emitted
        now, with their recipients: their send.due may be lost (a crash between marking
        and publishing). The mailer's ledger makes a second send.due of a send harmless."""
        return await self._db.fetch(
            "UPDATE sends s SET emitted_at = now()"
            " WHERE s.send_id = ANY(ARRAY(SELECT send_id FROM sends WHERE state = 'emitted'"
            "   AND emitted_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED))"
            f" RETURNING {_EMITTED}",
            timeout_seconds, limit,
        )

    async def release(self, send_ids: list[UUID]) -> None:
        """Sends whose send.due could not be published: pending again."""
        await self._db.execute(
            "UPDATE sends SET state = 'pending' WHERE send_id = ANY($1::uuid[]) AND state = 'emitted'", send_ids
        )

    async def in_flight(self) -> int:
        return await self._db.fetchval("SELECT count(*) FROM sends WHERE state = 'emitted'")

    async def lag_seconds(self) -> float:
        """How late the oldest due, unemitted send of an active campaign is (sends wait
        for room in the window too: a large campaign's last sends are late by design).
        Each run's oldest is read from the index, not found among all its sends."""
        return await self._db.fetchval(
            "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(oldest.due_at)), 0)::float8"
            " FROM campaign_states cs JOIN runs ru ON ru.campaign_id = cs.campaign_id"
            " CROSS JOIN LATERAL (SELECT s.due_at FROM sends s WHERE s.run_id = ru.run_id AND s.state = 'pending'"
            "   AND s.due_at <= now() ORDER BY s.due_at LIMIT 1) oldest"
            " WHERE cs.state = 'active'"
        )


class SchedulerTransaction(Transaction):
    """One transaction of the scheduler: its repositories on the transaction's connection,
    and `emit` (the outbox)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        super().__init__(connection)
        self.runs = Runs(connection)
        self.batches = Batches(connection)
        self.recipients = Recipients(connection)
        self.states = CampaignStates(connection)
        self.sends = Sends(connection)


def unit_of_work(pool: asyncpg.Pool) -> UnitOfWork[SchedulerTransaction]:
    return UnitOfWork(pool, SchedulerTransaction)



async def _copy(connection: asyncpg.Connection, table: str, columns: list[str], records: list) -> bool:
    """COPY straight in, which is fast; False (and nothing stored) when a row is there already."""
    try:
        async with connection.transaction():  # a savepoint: a conflict undoes only this COPY
            await connection.copy_records_to_table(table, records=records, columns=columns)
        return True
    except asyncpg.UniqueViolationError:
        return False


async def _insert_missing(connection: asyncpg.Connection, table: str, columns: list[str], records: list,
                          returning: str | None = None) -> list:
    """COPY into a transaction-scoped temp table and INSERT ... ON CONFLICT DO NOTHING from
    it; each row stored (its `returning` column, else True)."""
    staging = f"incoming_{table}"
    await connection.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await connection.copy_records_to_table(staging, records=records, columns=columns)
    names = ", ".join(columns)
    rows = await connection.fetch(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} ON CONFLICT DO NOTHING"
        f" RETURNING {returning or 'true'}"
    )
    return [row[0] for row in rows]
