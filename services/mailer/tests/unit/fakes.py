"""In-memory stand-ins for the mailer's adapters, for the handlers' unit tests: each keeps
the rule its SQL keeps (which sends a claim refuses, which consent or campaign state wins),
so that a handler can be run through a whole story without a server."""

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from uuid import UUID, uuid4

from contracts.enums import DeliveryStatus
from contracts.events import ContactChanged, Recipient, SendDue
from contracts.steps import EmailContent
from mailer.campaigns import CampaignStates
from mailer.domain import (
    DELETED_SEQ,
    Answer,
    CampaignState,
    Claim,
    Consent,
    Outcome,
    RetryPolicy,
    SmtpAnswer,
    Stage,
)
from mailer.email_tests import EmailTestsInFlight
from mailer.limits import SendingLimits
from mailer.pace import SentPace
from mailer.server import SmtpTrouble
from mailer.settings import Settings
from servicekit.testing import FakeOutbox, FakeUnitOfWork
from servicekit.wiring import bind

ACCEPTED = SmtpAnswer(Stage.DATA, 250, "2.0.0 queued")


class FakeLedger:
    """Rows by send_id, (status, attempt): `sending` while claimed, then the outcome; a
    release puts the row back as before its claim. Claims as the SQL does."""

    def __init__(self) -> None:
        self.rows: dict[UUID, tuple[str, int]] = {}
        self.outcomes: dict[UUID, Outcome] = {}
        self.released: list[UUID] = []
        self.resent: set[UUID] = set()
        self.first_attempt_at = datetime.now(UTC)

    async def claim(self, sends: list[SendDue]) -> dict[UUID, Claim]:
        claims = {}
        for send in sends:
            before = self.rows.get(send.send_id)
            if before is None or before[0] == "sending" or (before[0] == "deferred" and before[1] < send.attempt) \
                    or (before[0] == "held" and before[1] <= send.attempt):
                crashed = before is not None and before[0] == "sending" and send.send_id not in self.resent
                if crashed:
                    self.resent.add(send.send_id)
                self.rows[send.send_id] = ("sending", send.attempt)
                claims[send.send_id] = Claim(self.first_attempt_at, crashed, before)
        return claims

    async def record(self, outcomes: list[tuple[SendDue, Outcome]]) -> None:
        for send, outcome in outcomes:
            self.rows[send.send_id] = (outcome.status.value, self.rows[send.send_id][1])
            self.outcomes[send.send_id] = outcome

    async def release(self, released: list[tuple[SendDue, Claim]]) -> None:
        for send, claim in released:
            assert self.rows[send.send_id][0] == "sending", "only a claim is released"
            if claim.before is None:
                del self.rows[send.send_id]
            else:
                self.rows[send.send_id] = claim.before
            self.released.append(send.send_id)

    async def answers(self, send_ids: list[UUID]) -> dict[UUID, Answer]:
        return {send_id: Answer(self.rows[send_id][1], self.outcomes[send_id])
                for send_id in send_ids if send_id in self.rows and self.rows[send_id][0] != "sending"}

    async def resent_after_crash(self) -> int:
        return len(self.resent)

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status, _ in self.rows.values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    def status_of(self, send: SendDue) -> DeliveryStatus:
        return self.outcomes[send.send_id].status


class FakeTransaction(FakeOutbox):
    """The mailer's transaction: the ledger, and what it emitted (the outbox)."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = FakeLedger()


class FakeConsentCache:
    """Consent by contact: the newer change by change_seq wins, a delete is final."""

    def __init__(self, known: dict[UUID, Consent] | None = None) -> None:
        self.known: dict[UUID, Consent] = dict(known or {})

    async def of(self, contact_ids: list[UUID]) -> dict[UUID, Consent]:
        return {contact_id: self.known[contact_id] for contact_id in contact_ids if contact_id in self.known}

    async def is_empty(self) -> bool:
        return not self.known

    async def remember(self, events: list[ContactChanged]) -> None:
        for event in events:
            seq = DELETED_SEQ if event.deleted else event.change_seq
            cached = self.known.get(event.contact_id)
            if cached is None or (seq or 0) >= (-1 if cached.change_seq is None else cached.change_seq):
                self.known[event.contact_id] = Consent(event.marketing_opt_in and not event.deleted, event.deleted,
                                                       seq)


class FakeCampaignStore:
    """The campaign states every instance shares: the higher sequence wins, completed is
    final; `changes` are what `changed_since` hands out next (an exception is raised)."""

    def __init__(self) -> None:
        self.states: dict[UUID, tuple[CampaignState, int]] = {}
        self.follows: list[tuple[UUID, CampaignState, int | None, bool]] = []
        self.changes: list[list[tuple[UUID, CampaignState, int]] | Exception] = []
        self.reads: list[datetime | None] = []
        self.on_read: Callable[[], None] = lambda: None

    async def follow(self, campaign_id: UUID, state: CampaignState, status_seq: int | None,
                     unversioned_wins: bool = True) -> bool:
        self.follows.append((campaign_id, state, status_seq, unversioned_wins))
        known = self.states.get(campaign_id)
        took = known is None or (known[0] is not CampaignState.COMPLETED and (
            (status_seq is not None and known[1] < status_seq) or (status_seq is None and unversioned_wins)))
        if took:
            self.states[campaign_id] = (state, max(status_seq or 0, known[1] if known else 0))
        return took

    async def changed_since(self, since: datetime | None) -> tuple[list[tuple[UUID, CampaignState, int]], datetime]:
        self.reads.append(since)
        self.on_read()
        changes = self.changes.pop(0) if self.changes else []
        if isinstance(changes, Exception):
            raise changes
        return changes, datetime(2026, 1, 1, tzinfo=UTC).replace(second=len(self.reads) % 60)


class FakeSmtp:
    """`connections` connections; each transaction answered by `answer(recipient)`, which may
    raise."""

    def __init__(self, answer: Callable[[str], SmtpAnswer] = lambda _: ACCEPTED, connections: int = 4) -> None:
        self.answer = answer
        self.transactions: list[str] = []
        self.messages: dict[str, list[bytes]] = {}  # by recipient: every message offered, refused ones too
        self._slots = asyncio.Semaphore(connections)

    @asynccontextmanager
    async def connection(self):
        async with self._slots:
            yield self

    async def send(self, message: bytes, sender: str, recipient: str, smtputf8: bool = False) -> SmtpAnswer:
        self.transactions.append(recipient)
        self.messages.setdefault(recipient, []).append(message)
        await asyncio.sleep(0)
        return self.answer(recipient)


class Mailer:
    """The mailer's adapters as fakes, and its handlers bound to them by name, as
    servicekit binds the real ones."""

    def __init__(self, smtp: FakeSmtp | None = None, consent: FakeConsentCache | None = None,
                 **settings) -> None:
        self.tx = FakeTransaction()
        self.uow = FakeUnitOfWork(self.tx)
        self.ledger = self.tx.ledger
        self.smtp = smtp or FakeSmtp()
        self.consent = consent or FakeConsentCache()
        self.campaigns = CampaignStates()
        self.campaign_store = FakeCampaignStore()
        self.trouble = SmtpTrouble()
        self.pace = SentPace()
        self.tests_in_flight = EmailTestsInFlight()
        self.dependencies = {
            "uow": self.uow, "consent": self.consent, "consent_is_empty": self.consent.is_empty,
            "campaign_store": self.campaign_store, "campaigns": self.campaigns, "smtp": self.smtp,
            "limits": SendingLimits(0, 0, 0), "retry_policy": RetryPolicy(), "trouble": self.trouble,
            "pace": self.pace, "tests_in_flight": self.tests_in_flight,
            "settings": Settings(tracking_secret="unit-test-secret", **settings),
        }

    def bound(self, handler: Callable, skip: int = 1) -> Callable:
        return bind(handler, self.dependencies, skip)


def sends(count: int, subject: str = "Hi {{ first_name }}", without_first_name: frozenset[int] = frozenset(),
          opted_in: bool | None = True, change_seq: int | None = 0, campaign_id: UUID | None = None,
          attempt: int = 1) -> list[SendDue]:
    """`count` sends of one campaign's run, each to its own contact who carries `opted_in`
    (as evaluated, at `change_seq`)."""
    campaign, run = campaign_id or uuid4(), uuid4()
    return [
        SendDue(send_id=uuid4(), campaign_id=campaign, run_id=run, step_index=0, due_at=datetime.now(UTC),
                attempt=attempt,
                recipient=Recipient(contact_id=uuid4(), email=f"r{i}@example.com",
                                    first_name=None if i in without_first_name else f"n{i}",
                                    marketing_opt_in=opted_in, change_seq=change_seq if opted_in is not None else None),
                content=EmailContent(subject=subject, text="Hello"))
        for i in range(count)
    ]
