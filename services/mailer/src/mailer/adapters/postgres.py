"""The send ledger, the consent cache and the campaigns' states in Postgres (schema
`mailer`): SQL in, domain values out."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.enums import DeliveryStatus
from contracts.events import ContactChanged, SendDue
from mailer.domain import DELETED_SEQ, Answer, CampaignState, Claim, Consent, Outcome
from servicekit.uow import Transaction, UnitOfWork

# What the database being away (stopped, restarting, unreachable) looks like from asyncpg:
# work that meets it is kept and tried again, not failed.
UNAVAILABLE = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
               asyncpg.AdminShutdownError, asyncpg.ConnectionFailureError)


class Ledger:
    """The ledger's statements, on the connection of one transaction (MailerTransaction)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def claim(self, sends: list[SendDue]) -> dict[UUID, Claim]:
        """Marks the sends `sending` and returns those that may be tried now. Not claimed:
        a send already sent, given up or cancelled, or whose attempt was made before (a
        redelivered send.due); a held send is tried again at the same attempt. Rows are
        locked in send_id order, so two mailers cannot deadlock."""
        latest: dict[UUID, SendDue] = {}
        for send in sends:  # the same send twice in a batch: its latest attempt
            if send.send_id not in latest or latest[send.send_id].attempt < send.attempt:
                latest[send.send_id] = send
        ordered = sorted(latest.values(), key=lambda send: send.send_id)
        connection = self._connection
        # Most sends are new to the ledger: inserted in one statement. Only those it already
        # holds (a redelivery, a retry, a crash leftover) are read and claimed as below.
        fresh = {row["send_id"]: row for row in await connection.fetch(
            _INSERT_SENDS + " ON CONFLICT (send_id) DO NOTHING RETURNING send_id, first_attempt_at", *_columns(ordered))}
        known = [send for send in ordered if send.send_id not in fresh]
        rows, before = list(fresh.values()), {}
        if known:
            # The rows as they were, locked first: read in the claiming statement itself (a
            # CTE), the first one came back already changed by it, and looked new.
            before = {row["send_id"]: (row["status"], row["attempt"]) for row in await connection.fetch(
                "SELECT send_id, status, attempt FROM ledger WHERE send_id = ANY($1::uuid[])"
                " ORDER BY send_id FOR UPDATE",
                [s.send_id for s in known],
            )}
            rows += await connection.fetch(
                _INSERT_SENDS + " ON CONFLICT (send_id) DO UPDATE SET status = 'sending', attempt = EXCLUDED.attempt,"
                "   updated_at = now()"
                "   WHERE ledger.status = 'sending'"
                "      OR (ledger.status = 'deferred' AND ledger.attempt < EXCLUDED.attempt)"
                "      OR (ledger.status = 'held' AND ledger.attempt <= EXCLUDED.attempt)"
                " RETURNING send_id, first_attempt_at",
                *_columns(known),
            )
        crashed = [row["send_id"] for row in rows if before.get(row["send_id"], ("",))[0] == "sending"]
        counted = set()
        if crashed:
            # A crash leftover released (SMTP unusable) and claimed again is counted once.
            counted = {row["send_id"] for row in await connection.fetch(
                "INSERT INTO resent_after_crash (send_id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING"
                " RETURNING send_id",
                crashed,
            )}
        return {row["send_id"]: Claim(row["first_attempt_at"], row["send_id"] in counted,
                                      before.get(row["send_id"]))
                for row in rows}

    async def record(self, outcomes: Sequence[tuple[SendDue, Outcome]]) -> None:
        """The outcomes of the sends (their email.status events are the handler's to emit)."""
        await self._connection.execute(
            "UPDATE ledger SET status = o.status, smtp_code = o.code, smtp_message = o.message,"
            " retry_at = o.retry_at, updated_at = now()"
            " FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::timestamptz[])"
            "   AS o(send_id, status, code, message, retry_at)"
            " WHERE ledger.send_id = o.send_id",
            [send.send_id for send, _ in outcomes], [o.status.value for _, o in outcomes],
            [o.smtp_code for _, o in outcomes], [o.smtp_message for _, o in outcomes],
            [o.retry_at for _, o in outcomes],
        )

    async def release(self, released: Sequence[tuple[SendDue, Claim]]) -> None:
        """The claims of sends the SMTP server kept from going: each row as before its claim
        (a new one is gone), so that the next claim takes it as if never claimed: neither
        refused nor counted as resent after a crash."""
        released = sorted(released, key=lambda item: item[0].send_id)  # lock order: no deadlocks
        fresh = [send.send_id for send, claim in released if claim.before is None]
        if fresh:
            await self._connection.execute(
                "DELETE FROM ledger WHERE send_id = ANY($1::uuid[]) AND status = 'sending'", fresh)
        older = [(send.send_id, *claim.before) for send, claim in released if claim.before is not None]
        if not older:
            return
        await self._connection.execute(
            "UPDATE ledger SET status = r.status, attempt = r.attempt, updated_at = now()"
            " FROM unnest($1::uuid[], $2::text[], $3::int[]) AS r(send_id, status, attempt)"
            " WHERE ledger.send_id = r.send_id AND ledger.status = 'sending'",
            [row[0] for row in older], [row[1] for row in older], [row[2] for row in older],
        )

    async def answers(self, send_ids: list[UUID]) -> dict[UUID, Answer]:
        """What the ledger holds of those of the sends that are settled (not `sending`)."""
        rows = await self._connection.fetch(
            "SELECT send_id, status, attempt, smtp_code, smtp_message, retry_at FROM ledger"
            " WHERE send_id = ANY($1::uuid[]) AND status <> 'sending'",
            send_ids,
        )
        return {row["send_id"]: Answer(row["attempt"], Outcome(DeliveryStatus(row["status"]), row["smtp_code"],
                                                               row["smtp_message"], row["retry_at"]))
                for row in rows}

    async def resent_after_crash(self) -> int:
        return await self._connection.fetchval("SELECT count(*) FROM resent_after_crash")


_INSERT_SENDS = (
    "INSERT INTO ledger (send_id, campaign_id, run_id, contact_id, step_index, attempt, status)"
    " SELECT *, 'sending' FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int[],"
    "   $6::int[]) AS i(send_id, campaign_id, run_id, contact_id, step_index, attempt) ORDER BY send_id"
)


def _columns(sends: list[SendDue]) -> list[list]:
    return [[s.send_id for s in sends], [s.campaign_id for s in sends], [s.run_id for s in sends],
            [s.recipient.contact_id for s in sends], [s.step_index for s in sends], [s.attempt for s in sends]]


class MailerTransaction(Transaction):
    """One transaction of the mailer: the ledger on its connection, and the outbox (`emit`)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        super().__init__(connection)
        self.ledger = Ledger(connection)


def unit_of_work(pool: asyncpg.Pool) -> UnitOfWork[MailerTransaction]:
    return UnitOfWork(pool, MailerTransaction)


class ConsentCache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def of(self, contact_ids: list[UUID]) -> dict[UUID, Consent]:
        """What is known of these contacts' consent; an unknown contact is absent."""
        rows = await self._pool.fetch(
            "SELECT contact_id, marketing_opt_in, deleted, change_seq FROM consent"
            " WHERE contact_id = ANY($1::uuid[])",
            contact_ids,
        )
        return {row["contact_id"]: Consent(row["marketing_opt_in"], row["deleted"], row["change_seq"]) for row in rows}

    async def is_empty(self) -> bool:
        return not await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM consent)")

    async def remember(self, events: list[ContactChanged]) -> None:
        """A batch of contact.changed in one statement, the last of each contact; an older
        change (a lower sequence) never replaces a newer one, and a delete is final."""
        latest = {event.contact_id: event for event in events}
        ordered = sorted(latest.values(), key=lambda event: event.contact_id)  # lock order: no deadlocks
        await self._pool.execute(
            "INSERT INTO consent (contact_id, email, marketing_opt_in, deleted, change_seq)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::bool[], $4::bool[], $5::bigint[])"
            " ON CONFLICT (contact_id) DO UPDATE SET email = EXCLUDED.email,"
            "   marketing_opt_in = EXCLUDED.marketing_opt_in, deleted = EXCLUDED.deleted,"
            "   change_seq = EXCLUDED.change_seq, updated_at = now()"
            " WHERE COALESCE(EXCLUDED.change_seq, 0) >= COALESCE(consent.change_seq, -1)",
            [e.contact_id for e in ordered], [e.email for e in ordered],
            [e.marketing_opt_in and not e.deleted for e in ordered], [e.deleted for e in ordered],
            [DELETED_SEQ if e.deleted else e.change_seq for e in ordered],
        )


class CampaignStateStore:
    """The campaign states every mailer instance shares (see migrations/0002)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def follow(self, campaign_id: UUID, state: CampaignState, status_seq: int | None,
                     unversioned_wins: bool = True) -> bool:
        """Stores the state unless a newer one is known or the campaign is completed. A
        state without a sequence (from before sequences) wins when `unversioned_wins`,
        else is only the first known. True when it took."""
        return bool(await self._pool.fetchval(
            "INSERT INTO campaign_states (campaign_id, state, status_seq) VALUES ($1, $2, COALESCE($3, 0))"
            " ON CONFLICT (campaign_id) DO UPDATE SET state = EXCLUDED.state,"
            "   status_seq = GREATEST(campaign_states.status_seq, EXCLUDED.status_seq), updated_at = clock_timestamp()"
            " WHERE campaign_states.state <> 'completed'"
            "   AND (campaign_states.status_seq < $3 OR ($3::bigint IS NULL AND $4))"
            " RETURNING true",
            campaign_id, state.value, status_seq, unversioned_wins,
        ))

    async def changed_since(self, since: datetime | None) -> tuple[list[tuple[UUID, CampaignState, int]], datetime]:
        """The states stored since `since` (all of them for None), and where to read from next.
        Reads a few seconds back each time: a change whose transaction commits late, with an
        earlier time, is not missed."""
        rows = await self._pool.fetch(
            "SELECT campaign_id, state, status_seq, clock_timestamp() AS now FROM campaign_states"
            " WHERE $1::timestamptz IS NULL OR updated_at > $1::timestamptz - interval '5 seconds'",
            since,
        )
        now = rows[0]["now"] if rows else await self._pool.fetchval("SELECT clock_timestamp()")
        return [(row["campaign_id"], CampaignState(row["state"]), row["status_seq"]) for row in rows], now
