"""Runs, recipients and sends in Postgres (schema `scheduler`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

import asyncpg
import structlog

from contracts.events import Recipient, SegmentEvaluated
from scheduler.domain import Planner, Run

log = structlog.get_logger()

_RUN = (
    "run_id, campaign_id, steps, start_date, start_time_of_day, timezone,"
    " send_in_recipient_timezone, activated_at"
)
# What send.due needs of an emitted send.
_EMITTED = (
    "s.send_id, s.run_id, s.campaign_id, s.contact_id, s.step_index, s.due_at, s.attempt, r.recipient AS recipient_json"
)


class SendStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def locked(self, run_id: UUID, exclusive: bool) -> AsyncIterator[asyncpg.Connection]:
        """A transaction holding the run's lock, from any scheduler instance: batches of a
        run share it (they are recorded side by side), activation holds it alone, so the
        recipients of a batch that found no run are all there when the run is planned."""
        lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(f"SELECT {lock}(hashtext($1))", f"run:{run_id}")
            yield connection

    async def save_run(self, connection: asyncpg.Connection, run: Run) -> None:
        await connection.execute(
            f"INSERT INTO runs ({_RUN}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run_id) DO NOTHING",
            run.run_id, run.campaign_id, run.steps_json(), run.start_date, run.start_time_of_day,
            run.timezone, run.send_in_recipient_timezone, run.activated_at,
        )

    async def load_run(self, connection: asyncpg.Connection, run_id: UUID) -> Run | None:
        row = await connection.fetchrow(f"SELECT {_RUN} FROM runs WHERE run_id = $1", run_id)
        return Run.from_row(row) if row else None

    async def save_batch(
        self, connection: asyncpg.Connection, event: SegmentEvaluated, planned: bool
    ) -> list[Recipient] | None:
        """Stores the batch's recipients and returns those the run did not hold yet; None
        when this very event was stored before (Kafka redelivered it). A batch number met
        again in another event (segment-svc evaluated the run again after a crash, and the
        contacts may have moved between batches) adds what the run lacks."""
        first = await connection.fetchval(
            "INSERT INTO evaluated_batches (run_id, batch_no, is_last, event_id) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING"
            " RETURNING NOT EXISTS (SELECT 1 FROM evaluated_batches WHERE run_id = $1 AND batch_no = $2)",
            event.run_id, event.batch_no, event.is_last, event.event_id,
        )
        if first is None:
            return None
        columns = ["run_id", "contact_id", "recipient", "planned"]
        records = [(event.run_id, r.contact_id, r.model_dump_json(), planned) for r in event.recipients]
        if first and await _copy(connection, "run_recipients", columns, records):
            return list(event.recipients)
        added = set(await _insert_missing(connection, "run_recipients", columns, records, returning="contact_id"))
        log.info("batch_published_again", batch_no=event.batch_no, recipients=len(records), added=len(added))
        return [r for r in event.recipients if r.contact_id in added]

    async def plan_waiting(self, connection: asyncpg.Connection, run: Run) -> int:
        """Plans the recipients that arrived before their run; returns how many sends."""
        rows = await connection.fetch(
            "UPDATE run_recipients SET planned = true WHERE run_id = $1 AND NOT planned RETURNING recipient",
            run.run_id,
        )
        return await self.add_sends(connection, run, [Recipient.model_validate_json(row["recipient"]) for row in rows])

    async def add_sends(self, connection: asyncpg.Connection, run: Run, recipients: list[Recipient]) -> int:
        planner = Planner(run)
        sends = [
            (s.send_id, s.run_id, s.campaign_id, s.contact_id, s.step_index, s.due_at)
            for recipient in recipients
            for s in planner.sends(recipient)
        ]
        stored = await _copy_via_temp(
            connection, "sends", ["send_id", "run_id", "campaign_id", "contact_id", "step_index", "due_at"], sends
        )
        if stored:
            await connection.execute("UPDATE runs SET sends = sends + $2 WHERE run_id = $1", run.run_id, stored)
        return stored

    async def refresh_statistics(self, connection: asyncpg.Connection) -> None:
        """The planner's view of sends after a bulk load (see migrations/0002)."""
        await connection.execute("ANALYZE sends, run_recipients")

    async def scheduling_totals(
        self, connection: asyncpg.Connection, run_id: UUID, emails: int, added: int = 0
    ) -> tuple[int, int] | None:
        """(recipients, sends) to announce: once a last batch and every batch number before
        it are planned (however many batch events came: a run evaluated twice may have
        more), and again when sends are `added` to a run already announced (a batch of a
        second evaluation whose recipients the first had not sent).

        Takes the run's row lock, so that of batches recorded side by side the last to
        commit sees all the others (each statement after the lock reads what is committed)."""
        await connection.execute("SELECT 1 FROM runs WHERE run_id = $1 FOR UPDATE", run_id)
        due = await connection.fetchval(
            "SELECT (NOT r.scheduled_published OR $2 > 0) AND EXISTS (SELECT 1 FROM evaluated_batches l"
            "   WHERE l.run_id = r.run_id AND l.is_last AND (SELECT count(DISTINCT b.batch_no) FROM evaluated_batches b"
            "     WHERE b.run_id = r.run_id AND b.batch_no <= l.batch_no) = l.batch_no + 1)"
            " FROM runs r WHERE r.run_id = $1",
            run_id, added,
        )
        if not due:
            return None
        sends = await connection.fetchval(
            "UPDATE runs SET scheduled_published = true WHERE run_id = $1 RETURNING sends", run_id
        )
        # Every recipient gets one send per email of the flow, or none when already there.
        return sends // emails, sends

    async def follow(self, connection: asyncpg.Connection, campaign_id: UUID, state: str,
                     status_seq: int | None, unversioned_wins: bool = True) -> bool:
        """Records the campaign's state unless a newer one (a higher status sequence) is
        known, or it is completed. A state without a sequence (from before sequences) wins
        when `unversioned_wins`, and is otherwise only the first known. True when it took."""
        return bool(await connection.fetchval(
            "INSERT INTO campaign_states (campaign_id, state, status_seq) VALUES ($1, $2, COALESCE($3, 0))"
            " ON CONFLICT (campaign_id) DO UPDATE SET state = EXCLUDED.state,"
            "   status_seq = GREATEST(campaign_states.status_seq, EXCLUDED.status_seq)"
            " WHERE campaign_states.state <> 'completed'"
            "   AND (campaign_states.status_seq < $3 OR ($3::bigint IS NULL AND $4))"
            " RETURNING true",
            campaign_id, state, status_seq, unversioned_wins,
        ))

    async def set_state(self, campaign_id: UUID, state: str, status_seq: int | None) -> int | None:
        """Pauses, resumes or completes the campaign, unless a newer state is known (None
        then); completing cancels what is still pending and returns how many sends that
        cancelled. Sends in flight come back from the mailer: held, cancelled or sent."""
        async with self.pool.acquire() as connection, connection.transaction():
            if not await self.follow(connection, campaign_id, state, status_seq):
                return None
            if state != "completed":
                return 0
            status = await connection.execute(
                "UPDATE sends SET state = 'cancelled' WHERE campaign_id = $1 AND state = 'pending'", campaign_id
            )
            return int(status.split()[-1])

    async def apply_outcomes(self, retries: list[tuple[UUID, int, datetime]], held: list[tuple[UUID, int]],
                             finished: list[UUID]) -> None:
        """What the mailer answered, in one transaction. A deferred send is due again at
        its retry time with the next attempt, a held one (its campaign was paused) at the
        same attempt; both once only, however often the answer is redelivered. A send that
        went out or was given up is done, also when its emission had been undone."""
        async with self.pool.acquire() as connection, connection.transaction():
            if retries:
                await connection.execute(
                    "UPDATE sends SET state = 'pending', due_at = o.retry_at, attempt = o.attempt + 1"
                    " FROM unnest($1::uuid[], $2::int[], $3::timestamptz[]) AS o(send_id, attempt, retry_at)"
                    " WHERE sends.send_id = o.send_id AND sends.attempt = o.attempt AND sends.state = 'emitted'",
                    *zip(*retries, strict=True),
                )
            if held:
                await connection.execute(
                    "UPDATE sends SET state = 'pending'"
                    " FROM unnest($1::uuid[], $2::int[]) AS o(send_id, attempt)"
                    " WHERE sends.send_id = o.send_id AND sends.attempt = o.attempt AND sends.state = 'emitted'",
                    *zip(*held, strict=True),
                )
            if finished:
                await connection.execute(
                    "UPDATE sends SET state = 'done' WHERE send_id = ANY($1::uuid[]) AND state IN ('pending', 'emitted')",
                    finished,
                )

    async def due_demand(self, connection: asyncpg.Connection, most: int) -> dict[UUID, tuple[int, int]]:
        """Per run of an active campaign: (sends in flight, sends due but not emitted, at most `most`)."""
        rows = await connection.fetch(
            "SELECT ru.run_id,"
            " (SELECT count(*) FROM sends e WHERE e.run_id = ru.run_id AND e.state = 'emitted') AS in_flight,"
            " (SELECT count(*) FROM (SELECT 1 FROM sends p WHERE p.run_id = ru.run_id AND p.state = 'pending'"
            "   AND p.due_at <= now() LIMIT $1) d) AS due"
            " FROM campaign_states cs JOIN runs ru ON ru.campaign_id = cs.campaign_id WHERE cs.state = 'active'",
            most,
        )
        return {row["run_id"]: (row["in_flight"], row["due"]) for row in rows}

    async def claim(self, connection: asyncpg.Connection, quotas: dict[UUID, int]) -> list[asyncpg.Record]:
        """Marks up to its quota of each run's due sends `emitted`, earliest first, and
        returns them with their recipients; other instances skip the locked rows."""
        return await connection.fetch(
            "UPDATE sends s SET state = 'emitted', emitted_at = now()"
            " FROM unnest($1::uuid[], $2::int[]) AS q(run_id, quota)"
            " CROSS JOIN LATERAL (SELECT p.send_id FROM sends p WHERE p.run_id = q.run_id AND p.state = 'pending'"
            "   AND p.due_at <= now() ORDER BY p.due_at LIMIT q.quota FOR UPDATE SKIP LOCKED) picked,"
            " run_recipients r"
            " WHERE s.send_id = picked.send_id AND r.run_id = s.run_id AND r.contact_id = s.contact_id"
            f" RETURNING {_EMITTED}",
            list(quotas), list(quotas.values()),
        )

    async def overdue(self, timeout_seconds: float, limit: int) -> list[asyncpg.Record]:
        """Sends emitted longer ago than the timeout with no outcome yet: their send.due
        may be lost (a crash between marking and publishing), so they are emitted again.
        The mailer's ledger makes a second send.due of a send harmless."""
        return await self.pool.fetch(
            "UPDATE sends s SET emitted_at = now()"
            " FROM (SELECT send_id FROM sends WHERE state = 'emitted'"
            "   AND emitted_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED) late,"
            " run_recipients r"
            " WHERE s.send_id = late.send_id AND r.run_id = s.run_id AND r.contact_id = s.contact_id"
            f" RETURNING {_EMITTED}",
            timeout_seconds, limit,
        )

    async def release(self, send_ids: list[UUID]) -> None:
        """Sends whose send.due could not be published: pending again."""
        await self.pool.execute(
            "UPDATE sends SET state = 'pending' WHERE send_id = ANY($1::uuid[]) AND state = 'emitted'", send_ids
        )

    async def in_flight(self) -> int:
        return await self.pool.fetchval("SELECT count(*) FROM sends WHERE state = 'emitted'")

    async def lag_seconds(self) -> float:
        """How late the oldest due, unemitted send of an active campaign is (sends wait
        for room in the window too: a large campaign's last sends are late by design)."""
        return await self.pool.fetchval(
            "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(s.due_at)), 0)::float8"
            " FROM campaign_states cs JOIN runs ru ON ru.campaign_id = cs.campaign_id"
            " JOIN sends s ON s.run_id = ru.run_id AND s.state = 'pending' AND s.due_at <= now()"
            " WHERE cs.state = 'active'"
        )


async def _copy_via_temp(connection: asyncpg.Connection, table: str, columns: list[str], records: list) -> int:
    """Rows into `table`, skipping those already there (a batch published again); how many
    went in."""
    if not records:
        return 0
    if await _copy(connection, table, columns, records):
        return len(records)
    return len(await _insert_missing(connection, table, columns, records))


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
