"""The send ledger and the consent cache in Postgres (schema `mailer`)."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.events import ContactChanged, EmailStatus, SendDue
from mailer.domain import Consent, Outcome
from servicekit import outbox


@dataclass(frozen=True)
class Claim:
    """A send this mailer may now try: its first attempt time, and whether a crash had
    caught an earlier try of it mid-transaction."""

    first_attempt_at: datetime
    resent_after_crash: bool


class Ledger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, sends: list[SendDue]) -> dict[UUID, Claim]:
        """Marks the sends `sending` and returns those that may be tried now. Not claimed:
        a send already sent or given up, or whose attempt was made before (a redelivered
        send.due). Rows are locked in send_id order, so two mailers cannot deadlock."""
        latest: dict[UUID, SendDue] = {}
        for send in sends:  # the same send twice in a batch: its latest attempt
            if send.send_id not in latest or latest[send.send_id].attempt < send.attempt:
                latest[send.send_id] = send
        ordered = sorted(latest.values(), key=lambda send: send.send_id)
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                "WITH incoming AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[],"
                "   $5::int[], $6::int[]) AS i(send_id, campaign_id, run_id, contact_id, step_index, attempt)),"
                " before AS (SELECT l.send_id, l.status FROM ledger l JOIN incoming USING (send_id)"
                "   ORDER BY l.send_id FOR UPDATE OF l)"
                " INSERT INTO ledger (send_id, campaign_id, run_id, contact_id, step_index, attempt, status)"
                " SELECT send_id, campaign_id, run_id, contact_id, step_index, attempt, 'sending'"
                "   FROM incoming ORDER BY send_id"
                " ON CONFLICT (send_id) DO UPDATE SET status = 'sending', attempt = EXCLUDED.attempt,"
                "   updated_at = now()"
                "   WHERE ledger.status = 'sending'"
                "      OR (ledger.status = 'deferred' AND ledger.attempt < EXCLUDED.attempt)"
                " RETURNING send_id, first_attempt_at,"
                "   (SELECT b.status FROM before b WHERE b.send_id = ledger.send_id) AS previous",
                [s.send_id for s in ordered], [s.campaign_id for s in ordered], [s.run_id for s in ordered],
                [s.recipient.contact_id for s in ordered], [s.step_index for s in ordered],
                [s.attempt for s in ordered],
            )
            crashed = [row["send_id"] for row in rows if row["previous"] == "sending"]
            if crashed:
                await connection.execute(
                    "INSERT INTO resent_after_crash (send_id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING",
                    crashed,
                )
            return {row["send_id"]: Claim(row["first_attempt_at"], row["previous"] == "sending") for row in rows}

    async def record(self, outcomes: list[tuple[SendDue, Outcome]]) -> None:
        """The outcomes and their email.status events, in one transaction."""
        if not outcomes:
            return
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "UPDATE ledger SET status = o.status, smtp_code = o.code, smtp_message = o.message, updated_at = now()"
                " FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS o(send_id, status, code, message)"
                " WHERE ledger.send_id = o.send_id",
                [send.send_id for send, _ in outcomes], [o.status.value for _, o in outcomes],
                [o.smtp_code for _, o in outcomes], [o.smtp_message for _, o in outcomes],
            )
            await outbox.add(connection, *(_status(send, outcome) for send, outcome in outcomes))

    async def resent_after_crash(self) -> int:
        return await self._pool.fetchval("SELECT count(*) FROM resent_after_crash")


def _status(send: SendDue, outcome: Outcome) -> EmailStatus:
    return EmailStatus(
        send_id=send.send_id, campaign_id=send.campaign_id, run_id=send.run_id, step_index=send.step_index,
        contact_id=send.recipient.contact_id, status=outcome.status, attempt=send.attempt,
        smtp_code=outcome.smtp_code, smtp_message=outcome.smtp_message, retry_at=outcome.retry_at,
    )


class ConsentCache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def of(self, contact_ids: list[UUID]) -> dict[UUID, Consent]:
        """What is known of these contacts' consent; an unknown contact is absent."""
        rows = await self._pool.fetch(
            "SELECT contact_id, marketing_opt_in, deleted FROM consent WHERE contact_id = ANY($1::uuid[])",
            contact_ids,
        )
        return {row["contact_id"]: Consent(row["marketing_opt_in"], row["deleted"]) for row in rows}

    async def is_empty(self) -> bool:
        return not await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM consent)")

    async def remember(self, event: ContactChanged) -> None:
        await self._pool.execute(
            "INSERT INTO consent (contact_id, email, marketing_opt_in, deleted) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (contact_id) DO UPDATE SET email = EXCLUDED.email,"
            " marketing_opt_in = EXCLUDED.marketing_opt_in, deleted = EXCLUDED.deleted, updated_at = now()",
            event.contact_id, event.email, event.marketing_opt_in and not event.deleted, event.deleted,
        )
