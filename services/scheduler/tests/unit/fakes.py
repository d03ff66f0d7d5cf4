"""In-memory stand-ins for the scheduler's adapters: the tables of adapters/postgres.py
as dicts, with the decisions its statements make (conflicts, states, attempts, the due
and in-flight counts), so that handlers can be tested without a server."""

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from contracts.codec import Message
from contracts.events import Recipient, SegmentEvaluated
from scheduler.domain import Run, ScheduledSend
from servicekit.testing import FakeOutbox, FakeUnitOfWork


class Clock:
    """PostgreSQL's now(), which the tests move."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Tables:
    def __init__(self) -> None:
        self.now = Clock()
        self.runs: dict[UUID, dict[str, Any]] = {}  # run_id -> {run, sends, scheduled_published}
        self.batches: dict[tuple[UUID, int, UUID], bool] = {}  # (run, batch_no, event_id) -> is_last
        self.recipients: dict[tuple[UUID, UUID], dict[str, Any]] = {}  # (run, contact) -> {recipient, planned}
        self.states: dict[UUID, dict[str, Any]] = {}  # campaign -> {state, status_seq}
        self.sends: dict[UUID, dict[str, Any]] = {}
        self.statistics_refreshed = 0
        self.uncommitted_sends = 0  # stored in the open unit of work: ANALYZE must wait for its commit
        self.runs_loaded = 0

    def send_states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for send in self.sends.values():
            counts[send["state"]] = counts.get(send["state"], 0) + 1
        return counts


class FakeRuns:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def save(self, run: Run) -> None:
        self._t.runs.setdefault(run.run_id, {"run": run, "sends": 0, "scheduled_published": False})

    async def load(self, run_id: UUID) -> Run | None:
        self._t.runs_loaded += 1
        row = self._t.runs.get(run_id)
        return row["run"] if row else None

    async def count_sends(self, run_id: UUID, added: int) -> None:
        self._t.runs[run_id]["sends"] += added

    async def totals_to_announce(self, run_id: UUID, emails: int, added: int = 0) -> tuple[int, int] | None:
        row = self._t.runs.get(run_id)
        if row is None or (row["scheduled_published"] and added <= 0):
            return None
        numbers = {no for (run, no, _) in self._t.batches if run == run_id}
        lasts = {no for (run, no, _), is_last in self._t.batches.items() if run == run_id and is_last}
        if not any(len({n for n in numbers if n <= last}) == last + 1 for last in lasts):
            return None
        row["scheduled_published"] = True
        return row["sends"] // emails, row["sends"]


class FakeBatches:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def record(self, event: SegmentEvaluated) -> bool | None:
        key = (event.run_id, event.batch_no, event.event_id)
        if key in self._t.batches:
            return None
        new = not any(run == event.run_id and no == event.batch_no for (run, no, _) in self._t.batches)
        self._t.batches[key] = event.is_last
        return new


class FakeRecipients:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def add(self, run_id: UUID, recipients: list[Recipient], planned: bool, new: bool) -> list[Recipient]:
        added = [r for r in recipients if (run_id, r.contact_id) not in self._t.recipients]
        for r in added:
            self._t.recipients[(run_id, r.contact_id)] = {"recipient": r.model_dump_json(), "planned": planned}
        return added

    async def plan_waiting(self, run_id: UUID) -> list[Recipient]:
        waiting = [row for (run, _), row in self._t.recipients.items() if run == run_id and not row["planned"]]
        for row in waiting:
            row["planned"] = True
        return [Recipient.model_validate_json(row["recipient"]) for row in waiting]


class FakeCampaignStates:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def follow(self, campaign_id: UUID, state: str, status_seq: int | None,
                     unversioned_wins: bool = True) -> bool:
        known = self._t.states.get(campaign_id)
        if known is None:
            self._t.states[campaign_id] = {"state": state, "status_seq": status_seq or 0}
            return True
        newer = known["status_seq"] < status_seq if status_seq is not None else unversioned_wins
        if known["state"] == "completed" or not newer:
            return False
        known.update(state=state, status_seq=max(known["status_seq"], status_seq or 0))
        return True

    def of(self, campaign_id: UUID) -> str | None:
        known = self._t.states.get(campaign_id)
        return known["state"] if known else None


class FakeSends:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def add(self, sends: list[ScheduledSend]) -> int:
        fresh = [s for s in sends if s.send_id not in self._t.sends]
        for s in fresh:
            self._t.sends[s.send_id] = {
                "send_id": s.send_id, "run_id": s.run_id, "campaign_id": s.campaign_id, "contact_id": s.contact_id,
                "step_index": s.step_index, "due_at": s.due_at, "attempt": 1, "state": "pending", "emitted_at": None,
            }
        self._t.uncommitted_sends += len(fresh)
        return len(fresh)

    async def refresh_statistics(self) -> None:
        # Inside the batch's transaction it would hold back the commit, and with it the
        # first email: ANALYZE takes 0.7 s on a million earlier sends.
        assert not self._t.uncommitted_sends, "statistics refreshed before the sends were committed"
        self._t.statistics_refreshed += 1

    async def cancel_pending(self, campaign_id: UUID) -> int:
        pending = [s for s in self._t.sends.values() if s["campaign_id"] == campaign_id and s["state"] == "pending"]
        for send in pending:
            send["state"] = "cancelled"
        return len(pending)

    def _answered(self, send_id: UUID, attempt: int) -> dict | None:
        send = self._t.sends.get(send_id)
        return send if send and send["attempt"] == attempt and send["state"] == "emitted" else None

    async def retry(self, retries: list[tuple[UUID, int, datetime]]) -> None:
        _once_each(retries)
        for send_id, attempt, retry_at in retries:
            if send := self._answered(send_id, attempt):
                send.update(state="pending", due_at=retry_at, attempt=attempt + 1)

    async def hold(self, held: list[tuple[UUID, int]]) -> None:
        _once_each(held)
        for send_id, attempt in held:
            if send := self._answered(send_id, attempt):
                send["state"] = "pending"

    async def finish(self, send_ids: list[UUID]) -> None:
        for send_id in send_ids:
            send = self._t.sends.get(send_id)
            if send and send["state"] in ("pending", "emitted"):
                del self._t.sends[send_id]

    def _due(self, run_id: UUID) -> list[dict]:
        now = self._t.now()
        due = [s for s in self._t.sends.values() if s["run_id"] == run_id and s["state"] == "pending"
               and s["due_at"] <= now]
        return sorted(due, key=lambda s: s["due_at"])

    def _active_runs(self) -> list[UUID]:
        active = {c for c, known in self._t.states.items() if known["state"] == "active"}
        return [run_id for run_id, row in self._t.runs.items() if row["run"].campaign_id in active]

    async def due_demand(self, most: int) -> dict[UUID, tuple[int, int]]:
        return {
            run_id: (sum(1 for s in self._t.sends.values() if s["run_id"] == run_id and s["state"] == "emitted"),
                     min(most, len(self._due(run_id))))
            for run_id in self._active_runs()
        }

    def _emitted(self, send: dict) -> dict[str, Any]:
        send["emitted_at"] = self._t.now()
        recipient = self._t.recipients[(send["run_id"], send["contact_id"])]["recipient"]
        names = ("send_id", "run_id", "campaign_id", "contact_id", "step_index", "due_at", "attempt")
        return {**{name: send[name] for name in names}, "recipient_json": recipient}

    async def claim(self, quotas: dict[UUID, int]) -> list[dict[str, Any]]:
        claimed = []
        for run_id, quota in quotas.items():
            for send in self._due(run_id)[:quota]:
                send["state"] = "emitted"
                claimed.append(self._emitted(send))
        return claimed

    async def overdue(self, timeout_seconds: float, limit: int) -> list[dict[str, Any]]:
        before = self._t.now() - timedelta(seconds=timeout_seconds)
        late = [s for s in self._t.sends.values() if s["state"] == "emitted" and s["emitted_at"] < before][:limit]
        return [self._emitted(send) for send in late]

    async def release(self, send_ids: list[UUID]) -> None:
        for send_id in send_ids:
            if self._t.sends[send_id]["state"] == "emitted":
                self._t.sends[send_id]["state"] = "pending"

    async def in_flight(self) -> int:
        return sum(1 for s in self._t.sends.values() if s["state"] == "emitted")

    async def lag_seconds(self) -> float:
        due = [s["due_at"] for run_id in self._active_runs() for s in self._due(run_id)]
        return (self._t.now() - min(due)).total_seconds() if due else 0.0


def _once_each(answers: Iterable[tuple]) -> None:
    """PostgreSQL refuses to update one row twice in a statement: so does the fake."""
    ids = [answer[0] for answer in answers]
    assert len(ids) == len(set(ids)), "the same send twice in one statement"


class FakeTransaction:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.runs = FakeRuns(tables)
        self.batches = FakeBatches(tables)
        self.recipients = FakeRecipients(tables)
        self.states = FakeCampaignStates(tables)
        self.sends = FakeSends(tables)
        self.outbox = FakeOutbox()
        self.emit = self.outbox.emit


class LockingUnitOfWork(FakeUnitOfWork[FakeTransaction]):
    """The fake unit of work, remembering also whether each lock was shared."""

    def __init__(self, transaction: FakeTransaction) -> None:
        super().__init__(transaction)
        self.modes: list[tuple[tuple[str, ...], bool]] = []

    @asynccontextmanager
    async def __call__(self, *locks: str, shared: bool = False) -> AsyncIterator[FakeTransaction]:
        self.modes.append((locks, shared))
        async with super().__call__(*locks, shared=shared) as tx:
            try:
                yield tx
            finally:
                tx.tables.uncommitted_sends = 0


class FakePublisher:
    """What would have gone to Kafka; `failing` raises like a broker that is away."""

    def __init__(self, failing: bool = False) -> None:
        self.messages: list[Message] = []
        self.failing = failing

    async def send_all(self, messages: Iterable[Message]) -> None:
        if self.failing:
            raise ConnectionError("broker away")
        self.messages.extend(messages)


class Scheduler:
    """The adapters bootstrap makes, in memory: `uow`, and `sends` and `runs` as bound to
    the pool, over the same tables."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.tx = FakeTransaction(self.tables)
        self.uow = LockingUnitOfWork(self.tx)
        self.sends = FakeSends(self.tables)
        self.runs = FakeRuns(self.tables)
