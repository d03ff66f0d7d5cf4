"""In-memory stand-ins for campaign-api's adapters, for the handlers' unit tests: the same
methods as adapters/postgres.py and adapters/upstream.py, over dicts."""

from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from campaign_api.domain import (
    COUNTERS,
    Account,
    AccountExists,
    Campaign,
    CampaignDraft,
    CampaignNotFound,
    SegmentNotFound,
    SessionView,
    StatusEntry,
    StepStats,
)
from campaign_api.throttle import SignInThrottle
from contracts.enums import CampaignStatus
from contracts.events import EmailStatus
from contracts.links import SendRef
from servicekit.testing import FakeOutbox, FakeUnitOfWork


class Clock:
    """now(), a microsecond later at every call: every write of a row changes its updated_at."""

    def __init__(self) -> None:
        self._now = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self._now += timedelta(microseconds=1)
        return self._now


class FakeCampaigns:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.rows: dict[UUID, Campaign] = {}
        self.status_seq: dict[UUID, int] = {}
        self.histories: dict[UUID, list[StatusEntry]] = {}
        self.before_lock: Callable[[UUID], None] | None = None  # what another request does meanwhile
        self.locks: list[UUID] = []

    async def add(self, draft: CampaignDraft, warnings: list[str]) -> Campaign:
        now = self.clock.now()
        campaign = Campaign(**draft.model_dump(), id=uuid4(), status=CampaignStatus.DRAFT, warnings=warnings,
                            created_at=now, updated_at=now)
        self.rows[campaign.id] = campaign
        self.status_seq[campaign.id] = 1
        return campaign

    async def get(self, campaign_id: UUID) -> Campaign:
        if campaign_id not in self.rows:
            raise CampaignNotFound(campaign_id)
        return self.rows[campaign_id]

    async def locked(self, campaign_id: UUID) -> Campaign:
        if self.before_lock:
            self.before_lock(campaign_id)
        self.locks.append(campaign_id)
        return await self.get(campaign_id)

    async def page(self, status, after, limit) -> list[Campaign]:
        rows = sorted(self.rows.values(), key=lambda c: (c.created_at, c.id))
        rows = [c for c in rows if (status is None or c.status is status) and (after is None or (c.created_at, c.id) > after)]
        return rows[:limit]

    async def replace(self, campaign_id: UUID, draft: CampaignDraft, warnings: list[str]) -> Campaign:
        return self.change(campaign_id, **{name: getattr(draft, name) for name in CampaignDraft.model_fields},
                           warnings=warnings)

    async def delete(self, campaign_id: UUID) -> None:
        del self.rows[campaign_id]

    async def set_status(self, campaign_id: UUID, status: CampaignStatus, **stamps) -> tuple[Campaign, int]:
        self.status_seq[campaign_id] += 1
        return self.change(campaign_id, status=status, **stamps), self.status_seq[campaign_id]

    async def add_history(self, campaign_id: UUID, previous, status) -> None:
        self.histories.setdefault(campaign_id, []).append(
            StatusEntry(previous=previous, status=status, at=self.clock.now()))

    async def history(self, campaign_id: UUID) -> list[StatusEntry]:
        return list(self.histories.get(campaign_id, []))

    def change(self, campaign_id: UUID, **fields) -> Campaign:
        """A write of the row, as by any request (tests use it to play a concurrent one)."""
        self.rows[campaign_id] = self.rows[campaign_id].model_copy(update={**fields, "updated_at": self.clock.now()})
        return self.rows[campaign_id]


class FakeRuns:
    def __init__(self, campaigns: FakeCampaigns) -> None:
        self.campaigns = campaigns
        self.rows: dict[UUID, dict] = {}

    async def start(self, run_id: UUID, campaign_id: UUID) -> None:
        self.rows[run_id] = {"campaign_id": campaign_id, "recipients": None, "expected_sends": None, "terminal": 0}

    async def schedule(self, run_id: UUID, recipients: int, sends: int) -> None:
        if run_id in self.rows:
            self.rows[run_id] |= {"recipients": recipients, "expected_sends": sends}

    async def add_terminal(self, finished: Mapping[UUID, int]) -> None:
        for run_id, n in finished.items():
            if run_id in self.rows:
                self.rows[run_id]["terminal"] += n

    async def campaign_done(self, run_id: UUID) -> UUID | None:
        run = self.rows.get(run_id)
        if run is None or run["expected_sends"] is None or run["terminal"] < run["expected_sends"]:
            return None
        campaign = self.campaigns.rows.get(run["campaign_id"])
        if campaign is None or campaign.run_id != run_id or campaign.status is not CampaignStatus.ACTIVE:
            return None
        return campaign.id

    async def progress(self, run_id: UUID):
        run = self.rows.get(run_id)
        return None if run is None else (run["recipients"], run["expected_sends"])


class FakeOutcomes:
    def __init__(self) -> None:
        self.rows: dict[UUID, dict] = {}
        self.locked: list[list[UUID]] = []

    async def lock(self, send_ids: list[UUID]) -> dict[UUID, str]:
        self.locked.append(list(send_ids))
        return {send_id: self.rows[send_id]["status"] for send_id in send_ids if send_id in self.rows}

    async def keep(self, events: list[EmailStatus]) -> list[dict]:
        changed = []
        for event in events:
            known = self.rows.get(event.send_id)
            if known and not (known["status"] in ("deferred", "held") and known["attempt"] <= event.attempt):
                continue
            row = {"send_id": event.send_id, "run_id": event.run_id, "campaign_id": event.campaign_id,
                   "step_index": event.step_index, "status": event.status.value, "attempt": event.attempt}
            self.rows[event.send_id] = row
            changed.append(row)
        return changed


class FakeCounters:
    def __init__(self) -> None:
        self.rows: dict[tuple[UUID, int], dict[str, int]] = {}

    async def add(self, changes) -> None:
        for key, counts in changes.items():
            assert set(counts) <= set(COUNTERS), counts
            row = self.rows.setdefault(key, dict.fromkeys(COUNTERS, 0))
            for name, n in counts.items():
                row[name] += n

    async def of(self, campaign_id: UUID) -> list[StepStats]:
        return [StepStats(step_index=step, **counts) for (campaign, step), counts in sorted(self.rows.items())
                if campaign == campaign_id]


class FakeEngagements:
    def __init__(self) -> None:
        self.kept: dict[tuple[UUID, str], str | None] = {}

    async def first(self, ref: SendRef, kind: str, url: str | None) -> bool:
        if (ref.send_id, kind) in self.kept:
            return False
        self.kept[(ref.send_id, kind)] = url
        return True


class FakeAccounts:
    def __init__(self) -> None:
        self.rows: dict[str, Account] = {}

    async def add(self, email: str, password_hash: str) -> Account:
        if email.lower() in self.rows:
            raise AccountExists(email)
        self.rows[email.lower()] = Account(id=uuid4(), email=email, password_hash=password_hash)
        return self.rows[email.lower()]

    async def by_email(self, email: str) -> Account | None:
        return self.rows.get(email.lower())

    async def any(self) -> bool:
        return bool(self.rows)


class FakeSessions:
    def __init__(self, accounts: FakeAccounts, clock: Clock) -> None:
        self.accounts, self.clock = accounts, clock
        self.rows: dict[bytes, dict] = {}

    async def add(self, token_hash: bytes, account_id: UUID, csrf_token: str, expires_at: datetime) -> None:
        self.rows[token_hash] = {"account_id": account_id, "csrf_token": csrf_token, "expires_at": expires_at}

    async def get(self, token_hash: bytes) -> SessionView | None:
        row = self.rows.get(token_hash)
        if row is None or row["expires_at"] <= datetime.now(UTC):
            return None
        email = next(a.email for a in self.accounts.rows.values() if a.id == row["account_id"])
        return SessionView(email=email, csrf_token=row["csrf_token"])

    async def delete(self, token_hash: bytes) -> None:
        self.rows.pop(token_hash, None)

    async def delete_expired(self) -> None:
        now = datetime.now(UTC)
        self.rows = {k: v for k, v in self.rows.items() if v["expires_at"] > now}


class FakePasswords:
    """Not argon2: the handlers' decisions only. Counts the verifications."""

    decoy = "hashed:a password no account has"

    def __init__(self) -> None:
        self.verified: list[str] = []

    async def hash(self, password: str) -> str:
        return "hashed:" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash == "hashed:" + password


class FakeRecipients:
    """send_outcomes and engagements rows, as the handlers read them."""

    def __init__(self) -> None:
        self.outcomes: list[dict] = []
        self.engagements: list[dict] = []

    async def page(self, campaign_id: UUID, status, after, limit) -> list[dict]:
        rows = sorted((r for r in self.outcomes if r["campaign_id"] == campaign_id
                       and (status is None or r["status"] == status)
                       and (after is None or (r["updated_at"], r["send_id"]) > after)),
                      key=lambda r: (r["updated_at"], r["send_id"]))
        return [{k: v for k, v in r.items() if k != "campaign_id"} for r in rows[:limit]]

    async def sends_per_bucket(self, campaign_id: UUID, bucket: str) -> list[dict]:
        return self._count(self.outcomes, campaign_id, bucket, "updated_at", "status")

    async def engagements_per_bucket(self, campaign_id: UUID, bucket: str) -> list[dict]:
        return self._count(self.engagements, campaign_id, bucket, "at", "kind")

    @staticmethod
    def _count(rows, campaign_id, bucket, stamp, what) -> list[dict]:
        counts: dict = {}
        for row in rows:
            if row["campaign_id"] == campaign_id:
                at = row[stamp].replace(second=0, microsecond=0)
                if bucket == "hour":
                    at = at.replace(minute=0)
                counts[(at, row[what])] = counts.get((at, row[what]), 0) + 1
        return [{"at": at, what: name, "n": n} for (at, name), n in sorted(counts.items())]


class FakeContactHistory:
    """A contact's rows of send_outcomes and engagements (FakeRecipients'), counted as the
    statements count them."""

    def __init__(self, recipients: FakeRecipients) -> None:
        self._r = recipients

    async def counts(self, contact_id: UUID) -> dict:
        sends = [r["status"] for r in self._r.outcomes if r.get("contact_id") == contact_id]
        mine = [r for r in self._r.engagements if r.get("contact_id") == contact_id]
        kinds = [r["kind"] for r in mine]
        person = [r["at"] for r in mine if r["kind"] != "machine_open"]
        return {"sent": sends.count("sent"), "failed": sends.count("failed"), "opens": kinds.count("open"),
                "clicks": kinds.count("click"), "unsubscribes": kinds.count("unsubscribe"),
                "last_engaged_at": max(person, default=None)}

    async def recent(self, contact_id: UUID, limit: int) -> list[dict]:
        mine = [r for r in self._r.engagements if r.get("contact_id") == contact_id and r["kind"] != "machine_open"]
        return [{k: r[k] for k in ("kind", "campaign_id", "step_index", "url", "at")}
                for r in sorted(mine, key=lambda r: r["at"], reverse=True)[:limit]]


class FakeTransaction:
    def __init__(self, clock: Clock) -> None:
        self.accounts = FakeAccounts()
        self.sessions = FakeSessions(self.accounts, clock)
        self.campaigns = FakeCampaigns(clock)
        self.runs = FakeRuns(self.campaigns)
        self.outcomes = FakeOutcomes()
        self.counters = FakeCounters()
        self.engagements = FakeEngagements()
        self.outbox = FakeOutbox()
        self.emit = self.outbox.emit


class TrackedUnitOfWork(FakeUnitOfWork):
    """Knows whether a transaction is open, so that the upstreams can tell who calls them under one."""

    def __init__(self, transaction: FakeTransaction) -> None:
        super().__init__(transaction)
        self.open = False

    @asynccontextmanager
    async def __call__(self, *locks: str, shared: bool = False):
        async with super().__call__(*locks, shared=shared) as tx:
            self.open = True
            try:
                yield tx
            finally:
                self.open = False


class FakeUpstreams:
    """segment-svc and flow-engine: the segments that exist, the flows' steps, and every
    call with whether a transaction was open at the time."""

    def __init__(self, uow: TrackedUnitOfWork) -> None:
        self.uow = uow
        self.segments: set[UUID] = set()
        self.flows: dict[UUID, list] = {}
        self.contacts: dict[UUID, dict] = {}
        self.health: dict[str, dict | None] = {}
        self.calls: list[tuple[str, UUID, bool]] = []

    async def flow(self, flow_id: UUID) -> dict | None:
        steps = self.flows.get(flow_id)
        return None if steps is None else {"id": str(flow_id), "steps": [
            step.model_dump(mode="json") if hasattr(step, "model_dump") else step for step in steps]}

    async def contact(self, contact_id: UUID) -> dict | None:
        return self.contacts.get(contact_id)

    async def emails_of(self, contact_ids: set[UUID]) -> dict[UUID, str]:
        return {c: self.contacts[c]["email"] for c in contact_ids if c in self.contacts}

    async def healths(self, own: dict) -> dict[str, dict | None]:
        return {"campaign-api": own, **self.health}

    async def require_segment(self, segment_id: UUID) -> None:
        self.calls.append(("segment", segment_id, self.uow.open))
        if segment_id not in self.segments:
            raise SegmentNotFound(segment_id)

    async def flow_steps(self, flow_id: UUID) -> list | None:
        self.calls.append(("flow", flow_id, self.uow.open))
        return self.flows.get(flow_id)


class World:
    """One campaign-api's adapters, faked: what the handlers are given, by their names."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.tx = FakeTransaction(self.clock)
        self.uow = TrackedUnitOfWork(self.tx)
        self.upstreams = FakeUpstreams(self.uow)
        self.campaigns, self.runs, self.counters = self.tx.campaigns, self.tx.runs, self.tx.counters
        self.accounts, self.sessions = self.tx.accounts, self.tx.sessions
        self.passwords = FakePasswords()
        self.seconds = 0.0  # the sign-in throttle's clock
        self.throttle = SignInThrottle(attempts=3, window=60.0, clock=lambda: self.seconds)
        self.recipients = FakeRecipients()
        self.contact_history = FakeContactHistory(self.recipients)

    @property
    def emitted(self):
        return self.tx.outbox.emitted
