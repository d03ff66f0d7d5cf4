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

    async def claim(self, send: SendDue) -> Claim | None:
        """Marks the send `sending`, or None when it must not be tried: already sent or
        given up, or this attempt was already made (a redelivered send.due)."""
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "WITH before AS (SELECT status, attempt FROM ledger WHERE send_id = $1 FOR UPDATE)"
                " INSERT INTO ledger (send_id, campaign_id, run_id, contact_id, step_index, attempt, status)"
                " VALUES ($1, $2, $3, $4, $5, $6, 'sending')"
                " ON CONFLICT (send_id) DO UPDATE SET status = 'sending', attempt = EXCLUDED.attempt, updated_at = now()"
                "   WHERE ledger.status = 'sending'"
                "      OR (ledger.status = 'deferred' AND ledger.attempt < EXCLUDED.attempt)"
                " RETURNING first_attempt_at, (SELECT status FROM before) AS previous",
                send.send_id, send.campaign_id, send.run_id, send.recipient.contact_id,
                send.step_index, send.attempt,
            )
            if row is None:
                return None
            crashed = row["previous"] == "sending"
            if crashed:
                await connection.execute(
                    "INSERT INTO resent_after_crash (send_id) VALUES ($1) ON CONFLICT DO NOTHING", send.send_id
                )
            return Claim(row["first_attempt_at"], crashed)

    async def record(self, send: SendDue, outcome: Outcome) -> None:
        """The outcome and its email.status event, in one transaction."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "UPDATE ledger SET status = $2, smtp_code = $3, smtp_message = $4, updated_at = now()"
                " WHERE send_id = $1",
                send.send_id, outcome.status.value, outcome.smtp_code, outcome.smtp_message,
            )
            await outbox.add(
                connection,
                EmailStatus(
                    send_id=send.send_id, campaign_id=send.campaign_id, run_id=send.run_id,
                    step_index=send.step_index, contact_id=send.recipient.contact_id,
                    status=outcome.status, attempt=send.attempt, smtp_code=outcome.smtp_code,
                    smtp_message=outcome.smtp_message, retry_at=outcome.retry_at,
                ),
            )

    async def resent_after_crash(self) -> int:
        return await self._pool.fetchval("SELECT count(*) FROM resent_after_crash")


class ConsentCache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def of(self, contact_id: UUID) -> Consent | None:
        row = await self._pool.fetchrow(
            "SELECT marketing_opt_in, deleted FROM consent WHERE contact_id = $1", contact_id
        )
        return Consent(row["marketing_opt_in"], row["deleted"]) if row else None

    async def remember(self, event: ContactChanged) -> None:
        await self._pool.execute(
            "INSERT INTO consent (contact_id, email, marketing_opt_in, deleted) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (contact_id) DO UPDATE SET email = EXCLUDED.email,"
            " marketing_opt_in = EXCLUDED.marketing_opt_in, deleted = EXCLUDED.deleted, updated_at = now()",
            event.contact_id, event.email, event.marketing_opt_in and not event.deleted, event.deleted,
        )
