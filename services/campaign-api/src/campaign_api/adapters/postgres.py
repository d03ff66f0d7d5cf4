"""Campaigns, their history, their runs' progress and their counters in Postgres (schema
`campaign_api`): SQL only. The decisions are the handlers'.

Each repository is bound to a connection (inside a `CampaignTransaction`) or to the pool
(reads that need no transaction: the same statements, one round trip each).
"""

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from campaign_api.domain import (
    COUNTERS,
    Account,
    AccountExists,
    Campaign,
    CampaignDraft,
    CampaignNotFound,
    SessionView,
    StatusEntry,
    StepStats,
)
from contracts.enums import CampaignStatus
from contracts.events import EmailStatus
from contracts.links import SendRef
from servicekit.database import keyset_page
from servicekit.uow import Transaction

Database = asyncpg.Connection | asyncpg.Pool

_COLUMNS = (
    "id, name, description, segment_id, flow_id, content, start_date, start_time_of_day, timezone,"
    " send_in_recipient_timezone, optimize_send_time, status, warnings, run_id, created_at, updated_at, activated_at, completed_at"
)


def _campaign(row: asyncpg.Record) -> Campaign:
    fields = dict(row)
    fields.pop("status_seq", None)  # the events' business, not the API's
    return Campaign.model_validate(fields)


def _draft_values(draft: CampaignDraft) -> tuple:
    content = draft.content.model_dump(mode="json") if draft.content else None
    return (
        draft.name, draft.description, draft.segment_id, draft.flow_id, content, draft.start_date,
        draft.start_time_of_day, draft.timezone, draft.send_in_recipient_timezone, draft.optimize_send_time,
    )


class CampaignRepository:
    """The campaigns and their status history."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, draft: CampaignDraft, warnings: list[str]) -> Campaign:
        row = await self._db.fetchrow(
            "INSERT INTO campaigns (id, name, description, segment_id, flow_id, content, start_date,"
            " start_time_of_day, timezone, send_in_recipient_timezone, optimize_send_time, warnings)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {_COLUMNS}",
            uuid4(), *_draft_values(draft), warnings,
        )
        return _campaign(row)

    async def get(self, campaign_id: UUID) -> Campaign:
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM campaigns WHERE id = $1", campaign_id)
        if row is None:
            raise CampaignNotFound(campaign_id)
        return _campaign(row)

    async def locked(self, campaign_id: UUID) -> Campaign:
        """The campaign under its row lock, until the transaction ends: every change of a
        campaign takes it, so of two concurrent changes one waits for the other."""
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM campaigns WHERE id = $1 FOR UPDATE", campaign_id)
        if row is None:
            raise CampaignNotFound(campaign_id)
        return _campaign(row)

    async def page(self, status: CampaignStatus | None, after: tuple | None, limit: int) -> list[Campaign]:
        rows = await keyset_page(
            self._db, f"SELECT {_COLUMNS} FROM campaigns WHERE ($1::text IS NULL OR status = $1)", after, limit, status
        )
        return [_campaign(row) for row in rows]

    async def replace(self, campaign_id: UUID, draft: CampaignDraft, warnings: list[str]) -> Campaign:
        row = await self._db.fetchrow(
            "UPDATE campaigns SET name = $2, description = $3, segment_id = $4, flow_id = $5, content = $6,"
            " start_date = $7, start_time_of_day = $8, timezone = $9, send_in_recipient_timezone = $10,"
            f" optimize_send_time = $11, warnings = $12, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            campaign_id, *_draft_values(draft), warnings,
        )
        return _campaign(row)

    async def delete(self, campaign_id: UUID) -> None:
        await self._db.execute("DELETE FROM campaigns WHERE id = $1", campaign_id)

    async def set_status(self, campaign_id: UUID, status: CampaignStatus, **stamps) -> tuple[Campaign, int]:
        """The new status (and the columns in `stamps`, e.g. run_id, completed_at); returns
        the campaign and its new status sequence."""
        sets = ", ".join(f"{name} = ${index}" for index, name in enumerate(stamps, start=3))
        row = await self._db.fetchrow(
            f"UPDATE campaigns SET status = $2, status_seq = status_seq + 1, updated_at = now()"
            f"{', ' + sets if sets else ''} WHERE id = $1 RETURNING {_COLUMNS}, status_seq",
            campaign_id, status, *stamps.values(),
        )
        return _campaign(row), row["status_seq"]

    async def add_history(self, campaign_id: UUID, previous: CampaignStatus | None, status: CampaignStatus) -> None:
        await self._db.execute(
            "INSERT INTO status_history (campaign_id, previous, status) VALUES ($1, $2, $3)",
            campaign_id, previous, status,
        )

    async def history(self, campaign_id: UUID) -> list[StatusEntry]:
        rows = await self._db.fetch(
            "SELECT previous, status, at FROM status_history WHERE campaign_id = $1 ORDER BY id", campaign_id
        )
        return [StatusEntry.model_validate(dict(row)) for row in rows]


class RunRepository:
    """Each run's progress: the sends campaign.scheduled announced, and how many are terminal."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(self, run_id: UUID, campaign_id: UUID) -> None:
        await self._db.execute("INSERT INTO runs (run_id, campaign_id) VALUES ($1, $2)", run_id, campaign_id)

    async def schedule(self, run_id: UUID, recipients: int, sends: int) -> None:
        await self._db.execute(
            "UPDATE runs SET recipients = $2, expected_sends = $3 WHERE run_id = $1", run_id, recipients, sends
        )

    async def add_terminal(self, finished: Mapping[UUID, int]) -> None:
        """Adds, per run, the sends that have just turned terminal."""
        await self._db.execute(
            "UPDATE runs SET terminal_sends = terminal_sends + f.n"
            " FROM unnest($1::uuid[], $2::int[]) AS f (run_id, n) WHERE runs.run_id = f.run_id",
            list(finished), list(finished.values()),
        )

    async def campaign_done(self, run_id: UUID) -> UUID | None:
        """The campaign of the run when the run is its current one, every announced send of
        it is terminal, and the campaign is still active; else None."""
        return await self._db.fetchval(
            "SELECT r.campaign_id FROM runs r JOIN campaigns c ON c.id = r.campaign_id AND c.run_id = r.run_id"
            " WHERE r.run_id = $1 AND r.expected_sends IS NOT NULL AND r.terminal_sends >= r.expected_sends"
            " AND c.status = 'active'",
            run_id,
        )

    async def progress(self, run_id: UUID) -> tuple[int | None, int | None] | None:
        """(recipients, expected sends) of the run, None before scheduling; None for no run."""
        row = await self._db.fetchrow("SELECT recipients, expected_sends FROM runs WHERE run_id = $1", run_id)
        return None if row is None else (row["recipients"], row["expected_sends"])


class SendOutcomes:
    """The latest status of every send."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def lock(self, send_ids: list[UUID]) -> dict[UUID, str]:
        """The statuses known of these sends, locked in the order given (sorted by the
        caller, so that concurrent batches cannot deadlock)."""
        return {row["send_id"]: row["status"] for row in await self._db.fetch(
            "SELECT send_id, status FROM send_outcomes WHERE send_id = ANY($1::uuid[]) ORDER BY send_id FOR UPDATE",
            send_ids,
        )}

    async def keep(self, events: list[EmailStatus]) -> list[asyncpg.Record]:
        """Stores each event's status where the send is new or still pending (deferred or
        held, at that attempt or before); returns the sends changed (send_id, run_id,
        campaign_id, step_index, status)."""
        return await self._db.fetch(
            "INSERT INTO send_outcomes (send_id, run_id, campaign_id, step_index, status, attempt, contact_id,"
            " smtp_code, smtp_message)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::int[], $7::uuid[],"
            " $8::int[], $9::text[])"
            " ON CONFLICT (send_id) DO UPDATE SET status = EXCLUDED.status, attempt = EXCLUDED.attempt,"
            "   contact_id = EXCLUDED.contact_id, smtp_code = EXCLUDED.smtp_code,"
            "   smtp_message = EXCLUDED.smtp_message, updated_at = now()"
            " WHERE send_outcomes.status IN ('deferred', 'held') AND send_outcomes.attempt <= EXCLUDED.attempt"
            " RETURNING send_id, run_id, campaign_id, step_index, status",
            *zip(*[(e.send_id, e.run_id, e.campaign_id, e.step_index, e.status.value, e.attempt, e.contact_id,
                    e.smtp_code, e.smtp_message) for e in events], strict=True),
        )


class StepCounters:
    """The counters per campaign and flow step (`step_stats`): what stats are read from."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, changes: Mapping[tuple[UUID, int], Mapping[str, int]]) -> None:
        """Adds to the steps' counters; the counter names are step_stats columns (statuses and
        engagement counters, never input)."""
        if unknown := {name for counts in changes.values() for name in counts} - set(COUNTERS):
            raise ValueError(f"no counters {unknown}")
        keys = list(changes)
        columns = [[changes[key].get(name, 0) for key in keys] for name in COUNTERS]
        await self._db.execute(
            f"INSERT INTO step_stats (campaign_id, step_index, {', '.join(COUNTERS)})"
            f" SELECT * FROM unnest($1::uuid[], $2::int[], {', '.join(f'${i + 3}::bigint[]' for i in range(len(COUNTERS)))})"
            f" ON CONFLICT (campaign_id, step_index) DO UPDATE SET"
            f" {', '.join(f'{name} = step_stats.{name} + EXCLUDED.{name}' for name in COUNTERS)}",
            [key[0] for key in keys], [key[1] for key in keys], *columns,
        )

    async def of(self, campaign_id: UUID) -> list[StepStats]:
        rows = await self._db.fetch(
            f"SELECT step_index, {', '.join(COUNTERS)} FROM step_stats WHERE campaign_id = $1 ORDER BY step_index",
            campaign_id,
        )
        return [StepStats.model_validate(dict(row)) for row in rows]


class Engagements:
    """A send's first engagement of each kind."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def first(self, ref: SendRef, kind: str, url: str | None) -> bool:
        """Records the engagement; False when the send had one of that kind already."""
        return bool(await self._db.fetchval(
            "INSERT INTO engagements (send_id, kind, campaign_id, step_index, contact_id, url)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
            ref.send_id, kind, ref.campaign_id, ref.step_index, ref.contact_id, url,
        ))


class CampaignTransaction(Transaction):
    """What a handler sees of one transaction (servicekit.uow)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        super().__init__(connection)
        self.campaigns = CampaignRepository(connection)
        self.runs = RunRepository(connection)
        self.outcomes = SendOutcomes(connection)
        self.counters = StepCounters(connection)
        self.engagements = Engagements(connection)
        self.accounts = AccountRepository(connection)
        self.sessions = SessionRepository(connection)


class AccountRepository:
    """The people who sign in."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, email: str, password_hash: str) -> Account:
        try:
            row = await self._db.fetchrow(
                "INSERT INTO accounts (id, email, password_hash) VALUES ($1, $2, $3)"
                " RETURNING id, email, password_hash", uuid4(), email, password_hash,
            )
        except asyncpg.UniqueViolationError:
            raise AccountExists(email) from None
        return Account.model_validate(dict(row))

    async def by_email(self, email: str) -> Account | None:
        row = await self._db.fetchrow(
            "SELECT id, email, password_hash FROM accounts WHERE lower(email) = lower($1)", email
        )
        return None if row is None else Account.model_validate(dict(row))

    async def any(self) -> bool:
        return await self._db.fetchval("SELECT EXISTS (SELECT FROM accounts)")


class SessionRepository:
    """Signed-in browsers, by the hash of their token."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, token_hash: bytes, account_id: UUID, csrf_token: str, expires_at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO sessions (token_hash, account_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
            token_hash, account_id, csrf_token, expires_at,
        )

    async def get(self, token_hash: bytes) -> SessionView | None:
        """The session, unless it has expired."""
        row = await self._db.fetchrow(
            "SELECT a.email, s.csrf_token FROM sessions s JOIN accounts a ON a.id = s.account_id"
            " WHERE s.token_hash = $1 AND s.expires_at > now()", token_hash,
        )
        return None if row is None else SessionView.model_validate(dict(row))

    async def delete(self, token_hash: bytes) -> None:
        await self._db.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)

    async def delete_expired(self) -> None:
        await self._db.execute("DELETE FROM sessions WHERE expires_at <= now()")


_RECIPIENT_COLUMNS = "send_id, contact_id, step_index, status, attempt, smtp_code, smtp_message, updated_at"


class Recipients:
    """A campaign's sends and their latest outcome, and its activity over time."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, campaign_id: UUID, status: str | None, after: tuple | None, limit: int) -> list[dict]:
        """In (updated_at, send_id) order, after the key `after`."""
        stamp, send_id = after or (None, None)
        rows = await self._db.fetch(
            f"SELECT {_RECIPIENT_COLUMNS} FROM send_outcomes WHERE campaign_id = $1"
            " AND ($2::text IS NULL OR status = $2)"
            " AND ($3::timestamptz IS NULL OR (updated_at, send_id) > ($3, $4::uuid))"
            " ORDER BY updated_at, send_id LIMIT $5",
            campaign_id, status, stamp, send_id, limit,
        )
        return [dict(row) for row in rows]

    async def sends_per_bucket(self, campaign_id: UUID, bucket: str) -> list[dict]:
        return [dict(row) for row in await self._db.fetch(
            "SELECT date_trunc($2, updated_at) AS at, status, count(*) AS n FROM send_outcomes"
            " WHERE campaign_id = $1 GROUP BY 1, 2 ORDER BY 1", campaign_id, bucket,
        )]

    async def engagements_per_bucket(self, campaign_id: UUID, bucket: str) -> list[dict]:
        return [dict(row) for row in await self._db.fetch(
            "SELECT date_trunc($2, at) AS at, kind, count(*) AS n FROM engagements"
            " WHERE campaign_id = $1 GROUP BY 1, 2 ORDER BY 1", campaign_id, bucket,
        )]


class ContactHistory:
    """One contact's sends and engagements across campaigns (migration 0006's indexes)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def counts(self, contact_id: UUID) -> dict:
        """sent and failed (sends by their latest outcome); opens, clicks and unsubscribes
        (a send's first of each); last_engaged_at. Machine opens are not the person's."""
        row = await self._db.fetchrow(
            "SELECT (SELECT count(*) FROM send_outcomes WHERE contact_id = $1 AND status = 'sent') AS sent,"
            " (SELECT count(*) FROM send_outcomes WHERE contact_id = $1 AND status = 'failed') AS failed,"
            " count(*) FILTER (WHERE kind = 'open') AS opens, count(*) FILTER (WHERE kind = 'click') AS clicks,"
            " count(*) FILTER (WHERE kind = 'unsubscribe') AS unsubscribes,"
            " max(at) FILTER (WHERE kind <> 'machine_open') AS last_engaged_at"
            " FROM engagements WHERE contact_id = $1", contact_id,
        )
        return dict(row)

    async def recent(self, contact_id: UUID, limit: int) -> list[dict]:
        """The latest opens, clicks and unsubscribes, newest first."""
        return [dict(row) for row in await self._db.fetch(
            "SELECT kind, campaign_id, step_index, url, at FROM engagements"
            " WHERE contact_id = $1 AND kind <> 'machine_open' ORDER BY at DESC LIMIT $2", contact_id, limit,
        )]
