"""Campaigns, their history and their runs' progress in Postgres (schema `campaign_api`).

Every status change takes the campaign's row lock, so of two concurrent requests only
one can win a transition; the events it implies go to the outbox in the same transaction.
"""

from collections import Counter
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from campaign_api.domain import (
    COUNTERS,
    Campaign,
    CampaignDraft,
    CampaignNotFound,
    CampaignStats,
    NotEditable,
    StatusEntry,
    StepStats,
    campaign_stats,
    check_transition,
    counter_changes,
    latest_per_send,
)
from contracts.enums import CampaignStatus, DeliveryStatus, EngagementKind
from contracts.events import (
    CampaignActivated,
    CampaignScheduled,
    CampaignStatusChanged,
    EmailEngagement,
    EmailStatus,
)
from contracts.links import SendRef
from servicekit import outbox
from servicekit.database import keyset_page

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
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, draft: CampaignDraft, warnings: list[str]) -> Campaign:
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "INSERT INTO campaigns (id, name, description, segment_id, flow_id, content, start_date,"
                " start_time_of_day, timezone, send_in_recipient_timezone, optimize_send_time, warnings)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {_COLUMNS}",
                uuid4(), *_draft_values(draft), warnings,
            )
            await self._history(connection, row["id"], None, CampaignStatus.DRAFT)
            return _campaign(row)

    async def get(self, campaign_id: UUID) -> Campaign:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM campaigns WHERE id = $1", campaign_id)
        if row is None:
            raise CampaignNotFound(campaign_id)
        return _campaign(row)

    async def page(self, status: CampaignStatus | None, after: tuple | None, limit: int) -> list[Campaign]:
        rows = await keyset_page(
            self._pool, f"SELECT {_COLUMNS} FROM campaigns WHERE ($1::text IS NULL OR status = $1)", after, limit, status
        )
        return [_campaign(row) for row in rows]

    async def replace(self, campaign_id: UUID, draft: CampaignDraft, warnings: list[str]) -> Campaign:
        async with self._pool.acquire() as connection, connection.transaction():
            await self._locked_draft(connection, campaign_id)
            row = await connection.fetchrow(
                "UPDATE campaigns SET name = $2, description = $3, segment_id = $4, flow_id = $5, content = $6,"
                " start_date = $7, start_time_of_day = $8, timezone = $9, send_in_recipient_timezone = $10,"
                f" optimize_send_time = $11, warnings = $12, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
                campaign_id, *_draft_values(draft), warnings,
            )
            return _campaign(row)

    async def delete(self, campaign_id: UUID) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await self._locked_draft(connection, campaign_id)
            await connection.execute("DELETE FROM campaigns WHERE id = $1", campaign_id)

    async def _locked(self, connection: asyncpg.Connection, campaign_id: UUID) -> Campaign:
        row = await connection.fetchrow(f"SELECT {_COLUMNS} FROM campaigns WHERE id = $1 FOR UPDATE", campaign_id)
        if row is None:
            raise CampaignNotFound(campaign_id)
        return _campaign(row)

    async def _locked_draft(self, connection: asyncpg.Connection, campaign_id: UUID) -> Campaign:
        campaign = await self._locked(connection, campaign_id)
        if campaign.status is not CampaignStatus.DRAFT:
            raise NotEditable(campaign.status)
        return campaign

    async def _history(self, connection, campaign_id: UUID, previous, status) -> None:
        await connection.execute(
            "INSERT INTO status_history (campaign_id, previous, status) VALUES ($1, $2, $3)",
            campaign_id, previous, status,
        )

    async def _set_status(self, connection, campaign: Campaign, target: CampaignStatus,
                          **stamps) -> tuple[Campaign, int]:
        """The change, its history and its campaign.status; returns the campaign and its
        new status sequence."""
        sets = ", ".join(f"{name} = ${index}" for index, name in enumerate(stamps, start=3))
        row = await connection.fetchrow(
            f"UPDATE campaigns SET status = $2, status_seq = status_seq + 1, updated_at = now()"
            f"{', ' + sets if sets else ''} WHERE id = $1 RETURNING {_COLUMNS}, status_seq",
            campaign.id, target, *stamps.values(),
        )
        await self._history(connection, campaign.id, campaign.status, target)
        await outbox.add(
            connection,
            CampaignStatusChanged(campaign_id=campaign.id, run_id=row["run_id"], status=target,
                                  previous=campaign.status, status_seq=row["status_seq"]),
        )
        return _campaign(row), row["status_seq"]

    async def activate(self, campaign_id: UUID, steps_of) -> Campaign:
        """draft -> active: snapshots the steps (`steps_of(campaign)`) into campaign.activated."""
        async with self._pool.acquire() as connection, connection.transaction():
            campaign = await self._locked(connection, campaign_id)
            check_transition(campaign.status, CampaignStatus.ACTIVE)
            steps = campaign.steps_or_content(await steps_of(campaign))
            now = datetime.now(UTC)
            run_id = uuid4()
            await connection.execute("INSERT INTO runs (run_id, campaign_id) VALUES ($1, $2)", run_id, campaign.id)
            active, status_seq = await self._set_status(connection, campaign, CampaignStatus.ACTIVE, run_id=run_id,
                                                        activated_at=now)
            await outbox.add(
                connection,
                CampaignActivated(
                    campaign_id=campaign.id, run_id=run_id, segment_id=campaign.segment_id, steps=steps,
                    start_date=campaign.start_date, start_time_of_day=campaign.start_time_of_day,
                    timezone=campaign.timezone, send_in_recipient_timezone=campaign.send_in_recipient_timezone,
                    optimize_send_time=campaign.optimize_send_time,
                    start_at=campaign.plan(steps, now)[0].due_at, activated_at=now, status_seq=status_seq,
                ),
            )
            return active

    async def change_status(self, campaign_id: UUID, target: CampaignStatus) -> Campaign:
        """Pause, resume, or complete by hand."""
        async with self._pool.acquire() as connection, connection.transaction():
            campaign = await self._locked(connection, campaign_id)
            check_transition(campaign.status, target)
            if target is CampaignStatus.COMPLETED:
                return (await self._set_status(connection, campaign, target, completed_at=datetime.now(UTC)))[0]
            updated, _ = await self._set_status(connection, campaign, target)
            if target is CampaignStatus.ACTIVE and campaign.run_id is not None:
                # Every send may have finished while the campaign was paused.
                await self._complete_if_done(connection, campaign.run_id)
                return await self._locked(connection, campaign_id)
            return updated

    async def history(self, campaign_id: UUID) -> list[StatusEntry]:
        rows = await self._pool.fetch(
            "SELECT previous, status, at FROM status_history WHERE campaign_id = $1 ORDER BY id", campaign_id
        )
        return [StatusEntry.model_validate(dict(row)) for row in rows]

    async def record_scheduled(self, event: CampaignScheduled) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "UPDATE runs SET recipients = $2, expected_sends = $3 WHERE run_id = $1",
                event.run_id, event.recipients, event.sends,
            )
            await self._complete_if_done(connection, event.run_id)

    async def record_outcomes(self, events: list[EmailStatus]) -> None:
        """Keeps each send's latest status and the steps' counters, for a batch of events in
        one transaction. A send turning terminal counts once towards its run, and a run
        completes its campaign when all its sends have. Redelivered or stale news changes nothing."""
        latest = latest_per_send(events)
        async with self._pool.acquire() as connection, connection.transaction():
            ids = sorted(latest)  # locked in one order: concurrent batches cannot deadlock
            previous = {row["send_id"]: row["status"] for row in await connection.fetch(
                "SELECT send_id, status FROM send_outcomes WHERE send_id = ANY($1::uuid[]) ORDER BY send_id FOR UPDATE",
                ids,
            )}
            batch = [latest[send_id] for send_id in ids]
            changed = await connection.fetch(
                "INSERT INTO send_outcomes (send_id, run_id, campaign_id, step_index, status, attempt)"
                " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::int[])"
                " ON CONFLICT (send_id) DO UPDATE SET status = EXCLUDED.status, attempt = EXCLUDED.attempt,"
                "   updated_at = now()"
                " WHERE send_outcomes.status IN ('deferred', 'held') AND send_outcomes.attempt <= EXCLUDED.attempt"
                " RETURNING send_id, run_id, campaign_id, step_index, status",
                *zip(*[(e.send_id, e.run_id, e.campaign_id, e.step_index, e.status.value, e.attempt) for e in batch],
                     strict=True),
            )
            if not changed:
                return
            await _add_counts(connection, counter_changes(changed, previous))
            finished = Counter(row["run_id"] for row in changed if DeliveryStatus(row["status"]).is_terminal)
            if finished:
                await connection.execute(
                    "UPDATE runs SET terminal_sends = terminal_sends + f.n"
                    " FROM unnest($1::uuid[], $2::int[]) AS f (run_id, n) WHERE runs.run_id = f.run_id",
                    list(finished), list(finished.values()),
                )
                for run_id in finished:
                    await self._complete_if_done(connection, run_id)

    async def record_engagement(self, ref: SendRef, kind: str, url: str | None) -> bool:
        """The first open, machine open, click or unsubscribe of a send counts and is
        published (email.engagement); a repeat changes nothing. True when it counted."""
        async with self._pool.acquire() as connection, connection.transaction():
            first = await connection.fetchval(
                "INSERT INTO engagements (send_id, kind, campaign_id, step_index, contact_id, url)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
                ref.send_id, kind, ref.campaign_id, ref.step_index, ref.contact_id, url,
            )
            if not first:
                return False
            await _count(connection, ref.campaign_id, ref.step_index, ENGAGEMENT_COUNTERS[kind])
            machine = kind == "machine_open"
            await outbox.add(connection, EmailEngagement(
                campaign_id=ref.campaign_id, run_id=ref.run_id, send_id=ref.send_id, contact_id=ref.contact_id,
                step_index=ref.step_index, kind=EngagementKind.OPEN if machine else EngagementKind(kind),
                url=url, machine=machine,
            ))
            return True

    async def _complete_if_done(self, connection, run_id: UUID) -> None:
        row = await connection.fetchrow(
            "SELECT r.campaign_id FROM runs r JOIN campaigns c ON c.id = r.campaign_id AND c.run_id = r.run_id"
            " WHERE r.run_id = $1 AND r.expected_sends IS NOT NULL AND r.terminal_sends >= r.expected_sends"
            " AND c.status = 'active'",
            run_id,
        )
        if row is None:
            return
        campaign = await self._locked(connection, row["campaign_id"])
        if campaign.status is CampaignStatus.ACTIVE:
            await self._set_status(connection, campaign, CampaignStatus.COMPLETED, completed_at=datetime.now(UTC))

    async def stats(self, campaign_id: UUID) -> CampaignStats:
        """From the counters alone: a few rows whatever the number of sends."""
        campaign = await self.get(campaign_id)
        run = await self._pool.fetchrow(
            "SELECT recipients, expected_sends FROM runs WHERE run_id = $1", campaign.run_id
        ) if campaign.run_id else None
        rows = await self._pool.fetch(
            f"SELECT step_index, {', '.join(COUNTERS)} FROM step_stats WHERE campaign_id = $1 ORDER BY step_index",
            campaign_id,
        )
        return campaign_stats(
            campaign_id, campaign.status, run["recipients"] if run else None, run["expected_sends"] if run else None,
            [StepStats.model_validate(dict(row)) for row in rows],
        )


# The step_stats column each engagement kind counts in.
ENGAGEMENT_COUNTERS = {"open": "opens", "machine_open": "machine_opens", "click": "clicks", "unsubscribe": "unsubscribes"}


async def _count(connection, campaign_id: UUID, step_index: int, counter: str) -> None:
    await _add_counts(connection, {(campaign_id, step_index): {counter: 1}})


async def _add_counts(connection, changes: dict[tuple[UUID, int], dict[str, int]]) -> None:
    """Adds to the steps' counters; the counter names are step_stats columns (statuses and
    ENGAGEMENT_COUNTERS values, never input)."""
    if unknown := {name for counts in changes.values() for name in counts} - set(COUNTERS):
        raise ValueError(f"no counters {unknown}")
    keys = list(changes)
    columns = [[changes[key].get(name, 0) for key in keys] for name in COUNTERS]
    await connection.execute(
        f"INSERT INTO step_stats (campaign_id, step_index, {', '.join(COUNTERS)})"
        f" SELECT * FROM unnest($1::uuid[], $2::int[], {', '.join(f'${i + 3}::bigint[]' for i in range(len(COUNTERS)))})"
        f" ON CONFLICT (campaign_id, step_index) DO UPDATE SET"
        f" {', '.join(f'{name} = step_stats.{name} + EXCLUDED.{name}' for name in COUNTERS)}",
        [key[0] for key in keys], [key[1] for key in keys], *columns,
    )
