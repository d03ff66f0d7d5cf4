"""The send.due handler with fakes of the ledger, the consent cache and the SMTP pool: what
one send meets stays that send's; the SMTP server's trouble fails no one."""

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from contracts.enums import DeliveryStatus
from contracts.events import Recipient, SendDue
from contracts.steps import EmailContent
from mailer import handlers
from mailer.adapters.postgres import Claim
from mailer.campaigns import CampaignStates
from mailer.domain import Consent, Outcome, RetryPolicy, SmtpAnswer, SmtpUnavailable, Stage
from mailer.limits import SendingLimits
from mailer.settings import Settings
from servicekit.health import HEALTH

ACCEPTED = SmtpAnswer(Stage.DATA, 250, "2.0.0 queued")


class FakeLedger:
    """Rows by send_id: `sending` while claimed, then the outcome; a release forgets the claim."""

    def __init__(self) -> None:
        self.status: dict[UUID, str] = {}
        self.outcomes: dict[UUID, Outcome] = {}
        self.released: list[UUID] = []
        self.records = 0

    async def claim(self, sends: list[SendDue]) -> dict[UUID, Claim]:
        claims = {}
        for send in sends:
            before = self.status.get(send.send_id)
            if before in (None, "sending"):
                self.status[send.send_id] = "sending"
                claims[send.send_id] = Claim(datetime.now(UTC), before == "sending",
                                             None if before is None else (before, send.attempt))
        return claims

    async def answer_again(self, sends: list[SendDue]) -> int:
        return len(sends)

    async def record(self, outcomes: list[tuple[SendDue, Outcome]], released=()) -> None:
        self.records += 1
        for send, outcome in outcomes:
            self.status[send.send_id] = outcome.status.value
            self.outcomes[send.send_id] = outcome
        for send, _claim in released:
            assert self.status[send.send_id] == "sending"
            del self.status[send.send_id]
            self.released.append(send.send_id)

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in self.status.values():
            counts[status] = counts.get(status, 0) + 1
        return counts


class EveryoneOptedIn:
    async def of(self, contact_ids: list[UUID]) -> dict[UUID, Consent]:
        return {contact_id: Consent(True) for contact_id in contact_ids}


class FakeSmtp:
    """`connections` connections; each transaction answered by `answer(recipient)`, which may raise."""

    def __init__(self, answer: Callable[[str], SmtpAnswer], connections: int = 4) -> None:
        self.answer = answer
        self.transactions: list[str] = []
        self._slots = asyncio.Semaphore(connections)

    @asynccontextmanager
    async def connection(self):
        async with self._slots:
            yield self

    async def send(self, message: bytes, sender: str, recipient: str, smtputf8: bool = False) -> SmtpAnswer:
        self.transactions.append(recipient)
        await asyncio.sleep(0)
        return self.answer(recipient)


def delivery(ledger: FakeLedger, smtp: FakeSmtp) -> handlers.Delivery:
    return handlers.Delivery(ledger, EveryoneOptedIn(), smtp, SendingLimits(0, 0, 0), RetryPolicy(), Settings(),
                             CampaignStates())


def sends(count: int, subject: str = "Hi {{ first_name }}", without_first_name: set[int] = frozenset()) -> list[SendDue]:
    campaign, run = uuid4(), uuid4()
    return [
        SendDue(send_id=uuid4(), campaign_id=campaign, run_id=run, step_index=0, due_at=datetime.now(UTC),
                recipient=Recipient(contact_id=uuid4(), email=f"r{i}@example.com",
                                    first_name=None if i in without_first_name else f"n{i}"),
                content=EmailContent(subject=subject, text="Hello"))
        for i in range(count)
    ]


@pytest.fixture(autouse=True)
def healthy_smtp():
    HEALTH.recovered("smtp")
    yield
    HEALTH.recovered("smtp")


async def test_a_send_whose_email_cannot_be_built_fails_alone_and_the_others_go_once():
    ledger, smtp = FakeLedger(), FakeSmtp(lambda _: ACCEPTED)
    batch = sends(20, subject="Hi {{ first_name.title() }}", without_first_name={3, 11})
    await handlers.deliver(batch, delivery(ledger, smtp))
    assert ledger.by_status() == {"sent": 18, "failed": 2}
    for index in (3, 11):
        failed = ledger.outcomes[batch[index].send_id]
        assert failed.smtp_message == "cannot build the email: 'None' has no attribute 'title'"
    assert sorted(smtp.transactions) == sorted(s.recipient.email for i, s in enumerate(batch) if i not in (3, 11))


async def test_whatever_one_send_raises_the_others_outcomes_are_recorded():
    def answer(recipient: str) -> SmtpAnswer:
        if recipient == "r2@example.com":
            raise RuntimeError("a bug")
        return ACCEPTED

    ledger = FakeLedger()
    batch = sends(6)
    await handlers.deliver(batch, delivery(ledger, FakeSmtp(answer)))
    assert ledger.by_status() == {"sent": 5, "deferred": 1}, "tried again later, alone"
    assert ledger.outcomes[batch[2].send_id].smtp_message == "unexpected error: RuntimeError('a bug')"


@pytest.mark.parametrize("refusal", [
    SmtpAnswer(Stage.AUTH, 535, "5.7.8 Authentication credentials invalid"),
    SmtpAnswer(Stage.GREETING, 554, "5.3.2 not now"),
    SmtpAnswer(Stage.MAIL_FROM, 550, "5.7.1 sender refused"),
    SmtpAnswer(Stage.CONNECT, None, "ConnectionRefusedError()"),
])
async def test_an_unusable_server_fails_no_one_releases_the_claims_and_raises(refusal):
    ledger, smtp = FakeLedger(), FakeSmtp(lambda _: refusal)
    mailer = delivery(ledger, smtp)
    batch = sends(30)
    with pytest.raises(SmtpUnavailable, match=str(refusal.code or "no answer")):
        await handlers.deliver(batch, mailer)
    assert ledger.status == {} and ledger.outcomes == {}, "nothing failed, every claim released"
    assert len(ledger.released) == 30
    assert len(smtp.transactions) <= 4, "once found unusable, the sends still waiting do not try it"
    assert HEALTH.report()["degraded"]["smtp"] == str(refusal)

    smtp.transactions.clear()
    with pytest.raises(SmtpUnavailable):  # retried while it still refuses: one send tries it
        await handlers.deliver(batch, mailer)
    assert len(smtp.transactions) == 1 and ledger.status == {}

    smtp.answer = lambda _: ACCEPTED  # the server is back: the retried batch goes, as new
    await handlers.deliver(batch, mailer)
    assert ledger.by_status() == {"sent": 30}
    assert not any(ledger.outcomes[s.send_id].status is DeliveryStatus.FAILED for s in batch)
    assert "smtp" not in HEALTH.report()["degraded"]


async def test_what_went_before_the_server_started_refusing_is_recorded_and_only_the_rest_released():
    refusal = SmtpAnswer(Stage.MAIL_FROM, 451, "4.3.0 try later")
    smtp = FakeSmtp(lambda _: ACCEPTED if len(smtp.transactions) <= 3 else refusal, connections=1)
    ledger = FakeLedger()
    batch = sends(10)
    with pytest.raises(SmtpUnavailable):
        await handlers.deliver(batch, delivery(ledger, smtp))
    assert ledger.by_status() == {"sent": 3}
    assert len(ledger.released) == 7 and len(smtp.transactions) == 4
    assert ledger.records == 1, "outcomes and releases in one transaction"


async def test_recipients_refused_at_rcpt_to_or_data_are_theirs_a_421_is_the_servers():
    answers = {"r0@example.com": SmtpAnswer(Stage.RCPT_TO, 550, "5.1.1 no such user"),
               "r1@example.com": SmtpAnswer(Stage.RCPT_TO, 450, "4.2.0 greylisted"),
               "r2@example.com": SmtpAnswer(Stage.DATA, 554, "5.7.1 spam")}
    ledger = FakeLedger()
    batch = sends(4)
    await handlers.deliver(batch, delivery(ledger, FakeSmtp(lambda r: answers.get(r, ACCEPTED))))
    assert [ledger.outcomes[s.send_id].status for s in batch] == [
        DeliveryStatus.FAILED, DeliveryStatus.DEFERRED, DeliveryStatus.FAILED, DeliveryStatus.SENT]

    closing = FakeLedger()
    with pytest.raises(SmtpUnavailable):
        await handlers.deliver(sends(4), delivery(closing, FakeSmtp(lambda _: SmtpAnswer(Stage.RCPT_TO, 421, "bye"))))
    assert closing.outcomes == {}


async def test_a_message_whose_answer_was_lost_stays_sending_to_be_counted_when_it_goes_again():
    lost = SmtpAnswer(Stage.DATA, None, "SMTPReadTimeoutError()", handed_over=True)
    ledger = FakeLedger()
    batch = sends(1)
    with pytest.raises(SmtpUnavailable):
        await handlers.deliver(batch, delivery(ledger, FakeSmtp(lambda _: lost)))
    assert ledger.status == {batch[0].send_id: "sending"} and not ledger.released
    claims = await ledger.claim(batch)
    assert claims[batch[0].send_id].resent_after_crash, "found mid-transaction, like after a crash"


async def test_outcomes_the_database_cannot_take_yet_are_kept_and_not_sent_again(monkeypatch):
    monkeypatch.setattr(handlers.asyncio, "sleep", _no_wait)
    ledger, smtp = FakeLedger(), FakeSmtp(lambda _: ACCEPTED)
    record, away = ledger.record, {"left": 3}

    async def flaky_record(outcomes, released=()):
        if away["left"]:
            away["left"] -= 1
            raise ConnectionRefusedError("the database is away")
        await record(outcomes, released)

    ledger.record = flaky_record
    batch = sends(10)
    await handlers.deliver(batch, delivery(ledger, smtp))
    assert ledger.by_status() == {"sent": 10} and ledger.records == 1
    assert len(smtp.transactions) == 10, "each email sent once: its outcome waited for the database"


_real_sleep = asyncio.sleep


async def _no_wait(seconds: float) -> None:
    await _real_sleep(0)
