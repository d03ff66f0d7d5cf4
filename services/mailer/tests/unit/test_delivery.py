"""The send.due handler (`deliver`) on fakes of the ledger, the consent cache, the
campaigns' states and SMTP: what each send meets decides its outcome and its email.status;
one send's trouble stays that send's; the SMTP server's trouble fails no one."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from contracts.enums import DeliveryStatus
from contracts.events import EmailStatus
from mailer import handlers
from mailer.domain import CampaignState, Consent, SmtpAnswer, SmtpUnavailable, Stage
from servicekit.health import HEALTH

from .fakes import ACCEPTED, FakeConsentCache, FakeSmtp, Mailer, sends


@pytest.fixture(autouse=True)
def healthy():
    HEALTH.recovered("smtp")
    HEALTH.recovered("database")
    yield
    HEALTH.recovered("smtp")
    HEALTH.recovered("database")


def deliver(mailer: Mailer):
    return mailer.bound(handlers.deliver)


async def test_each_outcome_is_recorded_and_answered_on_email_status_in_the_same_transaction():
    mailer = Mailer()
    batch = sends(3)
    await deliver(mailer)(batch)
    assert mailer.ledger.statuses() == {"sent": 3}
    answers = mailer.tx.of(EmailStatus)
    assert [(a.send_id, a.status, a.attempt, a.smtp_code) for a in answers] == [
        (s.send_id, DeliveryStatus.SENT, 1, 250) for s in batch]
    assert len(mailer.uow.locks) == 2, "one transaction claims, one records and emits"


async def test_sends_are_claimed_and_recorded_a_chunk_at_a_time():
    mailer = Mailer(delivery_chunk=10)
    await deliver(mailer)(sends(25))
    assert mailer.ledger.statuses() == {"sent": 25}
    assert len(mailer.uow.locks) == 6, "three chunks: a claim and a record each"


async def test_the_newer_consent_by_change_seq_decides_between_the_cache_and_the_evaluation():
    unsubscribed_later, opted_in_later, deleted = sends(1, change_seq=3), sends(1, change_seq=8), sends(1)
    cache = FakeConsentCache({
        unsubscribed_later[0].recipient.contact_id: Consent(False, change_seq=5),
        opted_in_later[0].recipient.contact_id: Consent(False, change_seq=5),
        deleted[0].recipient.contact_id: Consent(False, deleted=True, change_seq=2**63 - 1),
    })
    mailer = Mailer(consent=cache)
    await deliver(mailer)(unsubscribed_later + opted_in_later + deleted)
    assert mailer.ledger.status_of(unsubscribed_later[0]) is DeliveryStatus.SKIPPED_NO_CONSENT, \
        "an unsubscribe after the evaluation wins"
    assert mailer.ledger.status_of(opted_in_later[0]) is DeliveryStatus.SENT, "an opt-in after the cached opt-out"
    assert mailer.ledger.status_of(deleted[0]) is DeliveryStatus.SKIPPED_NO_CONSENT, "a delete is final"
    assert mailer.smtp.transactions == [opted_in_later[0].recipient.email]


async def test_a_contact_whose_consent_nobody_knows_yet_is_deferred_not_skipped():
    mailer = Mailer()
    batch = sends(1, opted_in=None)
    await deliver(mailer)(batch)
    deferred = mailer.ledger.outcomes[batch[0].send_id]
    assert (deferred.status, deferred.smtp_message) == (DeliveryStatus.DEFERRED, "consent not known yet")
    assert deferred.retry_at > datetime.now(UTC)
    assert not mailer.smtp.transactions


async def test_a_paused_campaigns_sends_are_held_and_a_completed_ones_cancelled_without_smtp():
    mailer = Mailer()
    paused, completed = sends(2), sends(2)
    mailer.campaigns.learn(paused[0].campaign_id, CampaignState.PAUSED, 3)
    mailer.campaigns.learn(completed[0].campaign_id, CampaignState.COMPLETED, 4)
    await deliver(mailer)(paused + completed)
    assert [mailer.ledger.status_of(s) for s in paused + completed] == [
        DeliveryStatus.HELD, DeliveryStatus.HELD, DeliveryStatus.CANCELLED, DeliveryStatus.CANCELLED]
    assert not mailer.smtp.transactions
    assert {a.status for a in mailer.tx.of(EmailStatus)} == {DeliveryStatus.HELD, DeliveryStatus.CANCELLED}


async def test_a_pause_that_comes_while_a_send_waits_for_its_connection_holds_it():
    mailer = Mailer(smtp=FakeSmtp(connections=1))
    batch = sends(5)

    def pause_after_the_first(_recipient: str) -> SmtpAnswer:
        mailer.campaigns.learn(batch[0].campaign_id, CampaignState.PAUSED, 3)
        return ACCEPTED

    mailer.smtp.answer = pause_after_the_first
    await deliver(mailer)(batch)
    assert mailer.ledger.statuses() == {"sent": 1, "held": 4}
    assert len(mailer.smtp.transactions) == 1


async def test_a_held_send_goes_on_resume_at_the_same_attempt_and_a_sent_one_never_again():
    mailer = Mailer()
    batch = sends(1)
    mailer.campaigns.learn(batch[0].campaign_id, CampaignState.PAUSED, 3)
    await deliver(mailer)(batch)
    mailer.campaigns.learn(batch[0].campaign_id, CampaignState.ACTIVE, 4)
    await deliver(mailer)(batch)
    assert mailer.ledger.status_of(batch[0]) is DeliveryStatus.SENT
    await deliver(mailer)(batch)
    assert len(mailer.smtp.transactions) == 1, "sent once"


async def test_a_send_due_the_ledger_has_answered_is_answered_again_with_that_answer_not_sent_again():
    mailer = Mailer(smtp=FakeSmtp(lambda _: SmtpAnswer(Stage.RCPT_TO, 451, "4.2.1 later")))
    batch = sends(2)
    await deliver(mailer)(batch)
    first = mailer.tx.of(EmailStatus)
    mailer.tx.emitted.clear()
    await deliver(mailer)(batch)  # emitted again by the scheduler: its answer overdue
    again = mailer.tx.of(EmailStatus)
    assert len(mailer.smtp.transactions) == 2, "not tried again at the same attempt"
    assert [(a.send_id, a.status, a.attempt, a.retry_at) for a in again] == \
        [(a.send_id, DeliveryStatus.DEFERRED, 1, a.retry_at) for a in first]


async def test_an_old_send_due_is_answered_with_the_attempt_the_ledger_settled():
    mailer = Mailer()
    retried = sends(1, attempt=2)
    await deliver(mailer)(retried)
    mailer.tx.emitted.clear()
    await deliver(mailer)([retried[0].model_copy(update={"attempt": 1})])  # the first attempt, redelivered
    [answer] = mailer.tx.of(EmailStatus)
    assert (answer.status, answer.attempt) == (DeliveryStatus.SENT, 2)


async def test_smtp_answers_make_sent_deferred_with_a_retry_time_or_failed():
    answers = {"r0@example.com": SmtpAnswer(Stage.RCPT_TO, 550, "5.1.1 no such user"),
               "r1@example.com": SmtpAnswer(Stage.RCPT_TO, 450, "4.2.0 greylisted"),
               "r2@example.com": SmtpAnswer(Stage.DATA, 554, "5.7.1 spam")}
    mailer = Mailer(smtp=FakeSmtp(lambda r: answers.get(r, ACCEPTED)))
    batch = sends(4)
    await deliver(mailer)(batch)
    assert [mailer.ledger.status_of(s) for s in batch] == [
        DeliveryStatus.FAILED, DeliveryStatus.DEFERRED, DeliveryStatus.FAILED, DeliveryStatus.SENT]
    greylisted = mailer.ledger.outcomes[batch[1].send_id]
    assert (greylisted.smtp_code, greylisted.smtp_message) == (450, "4.2.0 greylisted")
    assert datetime.now(UTC) + timedelta(seconds=140) < greylisted.retry_at < datetime.now(UTC) + timedelta(seconds=301)


async def test_a_4xx_past_the_retry_lifetime_fails_for_good():
    mailer = Mailer(smtp=FakeSmtp(lambda _: SmtpAnswer(Stage.RCPT_TO, 452, "4.2.2 mailbox full")))
    mailer.ledger.first_attempt_at = datetime.now(UTC) - timedelta(days=3)
    batch = sends(1, attempt=9)
    await deliver(mailer)(batch)
    failed = mailer.ledger.outcomes[batch[0].send_id]
    assert (failed.status, failed.smtp_message) == (DeliveryStatus.FAILED,
                                                    "gave up after 9 attempts: 4.2.2 mailbox full")


async def test_a_421_at_any_stage_is_the_servers_and_fails_no_one():
    mailer = Mailer(smtp=FakeSmtp(lambda _: SmtpAnswer(Stage.RCPT_TO, 421, "bye")))
    with pytest.raises(SmtpUnavailable):
        await deliver(mailer)(sends(4))
    assert mailer.ledger.outcomes == {} and mailer.ledger.rows == {}


async def test_a_send_whose_email_cannot_be_built_fails_alone_and_the_others_go_once():
    mailer = Mailer()
    batch = sends(20, subject="Hi {{ first_name.title() }}", without_first_name=frozenset({3, 11}))
    await deliver(mailer)(batch)
    assert mailer.ledger.statuses() == {"sent": 18, "failed": 2}
    for index in (3, 11):
        failed = mailer.ledger.outcomes[batch[index].send_id]
        assert failed.smtp_message == "cannot build the email: 'None' has no attribute 'title'"
    assert sorted(mailer.smtp.transactions) == sorted(
        s.recipient.email for i, s in enumerate(batch) if i not in (3, 11))


async def test_whatever_one_send_raises_the_others_outcomes_are_recorded():
    def answer(recipient: str) -> SmtpAnswer:
        if recipient == "r2@example.com":
            raise RuntimeError("a bug")
        return ACCEPTED

    mailer = Mailer(smtp=FakeSmtp(answer))
    batch = sends(6)
    with capture_logs() as logs:  # and no traceback rendered
        await deliver(mailer)(batch)
    assert [e["send_id"] for e in logs if e["event"] == "send_attempt_failed"] == [str(batch[2].send_id)]
    assert mailer.ledger.statuses() == {"sent": 5, "deferred": 1}, "tried again later, alone"
    assert mailer.ledger.outcomes[batch[2].send_id].smtp_message == "unexpected error: RuntimeError('a bug')"


@pytest.mark.parametrize("refusal", [
    SmtpAnswer(Stage.AUTH, 535, "5.7.8 Authentication credentials invalid"),
    SmtpAnswer(Stage.GREETING, 554, "5.3.2 not now"),
    SmtpAnswer(Stage.MAIL_FROM, 550, "5.7.1 sender refused"),
    SmtpAnswer(Stage.CONNECT, None, "ConnectionRefusedError()"),
])
async def test_an_unusable_server_fails_no_one_releases_the_claims_and_raises(refusal):
    mailer = Mailer(smtp=FakeSmtp(lambda _: refusal))
    batch = sends(30)
    with pytest.raises(SmtpUnavailable, match=str(refusal.code or "no answer")):
        await deliver(mailer)(batch)
    assert mailer.ledger.rows == {} and mailer.ledger.outcomes == {}, "nothing failed, every claim released"
    assert len(mailer.ledger.released) == 30 and not mailer.tx.emitted
    assert len(mailer.smtp.transactions) <= 4, "once found unusable, the sends still waiting do not try it"
    assert HEALTH.report()["degraded"]["smtp"] == str(refusal)

    mailer.smtp.transactions.clear()
    with pytest.raises(SmtpUnavailable):  # retried while it still refuses: one send tries it
        await deliver(mailer)(batch)
    assert len(mailer.smtp.transactions) == 1 and mailer.ledger.rows == {}

    mailer.smtp.answer = lambda _: ACCEPTED  # the server is back: the retried batch goes, as new
    await deliver(mailer)(batch)
    assert mailer.ledger.statuses() == {"sent": 30}
    assert mailer.trouble.reason is None and "smtp" not in HEALTH.report()["degraded"]


async def test_what_went_before_the_server_started_refusing_is_recorded_and_only_the_rest_released():
    refusal = SmtpAnswer(Stage.MAIL_FROM, 451, "4.3.0 try later")
    mailer = Mailer(smtp=FakeSmtp(connections=1))
    mailer.smtp.answer = lambda _: ACCEPTED if len(mailer.smtp.transactions) <= 3 else refusal
    batch = sends(10)
    with pytest.raises(SmtpUnavailable):
        await deliver(mailer)(batch)
    assert mailer.ledger.statuses() == {"sent": 3}
    assert len(mailer.ledger.released) == 7 and len(mailer.smtp.transactions) == 4
    assert len(mailer.uow.locks) == 2, "outcomes and releases in one transaction"


async def test_a_message_whose_answer_was_lost_stays_sending_and_counts_as_resent_when_it_goes_again():
    lost = SmtpAnswer(Stage.DATA, None, "SMTPReadTimeoutError()", handed_over=True)
    mailer = Mailer(smtp=FakeSmtp(lambda _: lost))
    batch = sends(1)
    with pytest.raises(SmtpUnavailable):
        await deliver(mailer)(batch)
    assert mailer.ledger.rows == {batch[0].send_id: ("sending", 1)} and not mailer.ledger.released

    mailer.smtp.answer = lambda _: ACCEPTED
    await deliver(mailer)(batch)
    assert mailer.ledger.status_of(batch[0]) is DeliveryStatus.SENT
    assert (await mailer.bound(handlers.health_figures, skip=0)())["resent_after_crash"] == 1


async def test_outcomes_the_database_cannot_take_yet_are_kept_and_not_sent_again(monkeypatch):
    monkeypatch.setattr(asyncio, "sleep", _no_wait)  # the waits of servicekit.retry
    mailer = Mailer()
    record, away = mailer.ledger.record, {"left": 3}

    async def flaky_record(outcomes):
        if away["left"]:
            away["left"] -= 1
            raise ConnectionRefusedError("the database is away")
        await record(outcomes)

    mailer.ledger.record = flaky_record
    batch = sends(10)
    with capture_logs() as logs:
        await deliver(mailer)(batch)
    assert [e["tries"] for e in logs if e["event"] == "retrying"] == [1, 2, 3]
    assert mailer.ledger.statuses() == {"sent": 10} and len(mailer.tx.of(EmailStatus)) == 10
    assert len(mailer.smtp.transactions) == 10, "each email sent once: its outcome waited for the database"
    assert "database" not in HEALTH.report()["degraded"]


_real_sleep = asyncio.sleep


async def _no_wait(seconds: float) -> None:
    await _real_sleep(0)
