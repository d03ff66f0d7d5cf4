"""send_test on the fakes: a test of an email step goes to each of its addresses, rendered
as a real send, "[Test] " before its subject, without ledger, consent, tracking or
email.status; what is the test's fault is Rejected (the DLQ), what is the SMTP server's
is raised for the consumer loop to retry, and a retry never sends twice to an address
the server took."""

import asyncio
from email import message_from_bytes, policy
from uuid import uuid4

import pytest

from contracts.events import EmailTest, Recipient
from contracts.steps import EmailContent
from mailer import handlers
from mailer.domain import SmtpAnswer, SmtpUnavailable, Stage
from mailer.limits import SendingLimits
from servicekit.kafka import Rejected

from . import clock
from .fakes import ACCEPTED, FakeSmtp, Mailer

HTML = '<html><body><p>Hi {{ first_name }}, <a href="https://example.com/start">start here</a></p></body></html>'


def email_test(*to: str, subject: str = "Hello {{ first_name }}", first_name: str | None = "Ann") -> EmailTest:
    return EmailTest(test_id=uuid4(), flow_id=uuid4(), step_index=0, to=list(to),
                     recipient=Recipient(contact_id=uuid4(), email="ann@example.com", first_name=first_name),
                     content=EmailContent(subject=subject, text="Welcome aboard, {{ first_name }}.", html=HTML),
                     requested_by="editor@example.com")


def answering(**by_recipient: SmtpAnswer):
    """An SMTP server answering each recipient (its local part) as given, the others 250."""
    return lambda recipient: by_recipient.get(recipient.split("@")[0], ACCEPTED)


async def test_each_address_gets_the_email_rendered_for_the_recipient_with_test_before_its_subject():
    mailer = Mailer()
    test = email_test("one@example.com", "two@example.org")
    await mailer.bound(handlers.send_test)(test)

    assert sorted(mailer.smtp.transactions) == ["one@example.com", "two@example.org"]
    for index, address in enumerate(test.to):
        [raw] = mailer.smtp.messages[address]
        message = message_from_bytes(raw, policy=policy.default)
        assert message["To"] == address
        assert message["Subject"] == "[Test] Hello Ann"
        assert message["Message-ID"] == f"<{test.test_id}.{index}@localhost>"
        assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
        assert message.get_body(("plain",)).get_content().strip() == "Welcome aboard, Ann."
        html = message.get_body(("html",)).get_content()
        assert 'href="https://example.com/start"' in html, "the link as written: no click redirect"
        assert "<img" not in html, "no open pixel"
    assert not mailer.ledger.rows and not mailer.tx.emitted, "no ledger, no email.status"
    assert not mailer.tests_in_flight, "nothing left to remember"


async def test_a_test_of_a_contact_without_consent_is_sent_all_the_same():
    mailer = Mailer()  # the consent cache knows nobody: a test is not a send of a campaign
    await mailer.bound(handlers.send_test)(email_test("one@example.com"))
    assert mailer.smtp.transactions == ["one@example.com"]


async def test_a_template_that_cannot_render_is_rejected_before_any_email():
    mailer = Mailer()
    test = email_test("one@example.com", subject="{{ first_name.title() }}", first_name=None)
    with pytest.raises(Rejected, match="cannot be rendered"):
        await mailer.bound(handlers.send_test)(test)
    assert mailer.smtp.transactions == [] and not mailer.tests_in_flight


async def test_an_address_refused_for_good_is_rejected_once_the_others_have_theirs():
    mailer = Mailer(FakeSmtp(answering(two=SmtpAnswer(Stage.RCPT_TO, 550, "5.1.1 no such user"))))
    test = email_test("one@example.com", "two@example.com", "three@example.com")
    with pytest.raises(Rejected, match="two@example.com: rcpt_to: 550 5.1.1 no such user") as rejected:
        await mailer.bound(handlers.send_test)(test)
    assert "one@" not in str(rejected.value) and "three@" not in str(rejected.value)
    assert sorted(mailer.smtp.transactions) == ["one@example.com", "three@example.com", "two@example.com"]
    assert not mailer.tests_in_flight


@pytest.mark.parametrize("trouble", [
    SmtpAnswer(Stage.RCPT_TO, 451, "4.3.0 try later"),  # a 4xx: the infrastructure's, not the address's
    SmtpAnswer(Stage.CONNECT, None, "ConnectionRefusedError()"),  # unreachable
    SmtpAnswer(Stage.DATA, None, "TimeoutError()", handed_over=True),  # a timeout
    SmtpAnswer(Stage.AUTH, 535, "5.7.8 credentials invalid"),  # the server's, though a 5xx
])
async def test_what_the_server_could_not_take_is_retried_and_only_that(trouble):
    answers = {"two": [trouble, ACCEPTED]}
    mailer = Mailer(FakeSmtp(lambda recipient: answers.get(recipient.split("@")[0], [ACCEPTED]).pop(0)))
    test = email_test("one@example.com", "two@example.com", "three@example.com")
    send_test = mailer.bound(handlers.send_test)
    with pytest.raises(SmtpUnavailable, match="1 of 3 test emails not taken") as raised:
        await send_test(test)
    assert not isinstance(raised.value, Rejected), "the consumer loop retries it, never dead-letters it"
    assert len(mailer.tests_in_flight) == 1

    await send_test(test)  # the consumer loop's retry of the same message
    assert sorted(mailer.smtp.transactions) == [
        "one@example.com", "three@example.com", "two@example.com", "two@example.com"], \
        "the addresses the server took are not sent again"
    assert not mailer.tests_in_flight


def test_test_emails_keep_to_the_sending_limits():
    async def main() -> list[float]:
        mailer = Mailer()
        mailer.dependencies["limits"] = SendingLimits(global_rate=10, domain_rate=0, domain_concurrency=0)
        loop, times = asyncio.get_running_loop(), []
        mailer.smtp.answer = lambda _: times.append(loop.time()) or ACCEPTED
        await mailer.bound(handlers.send_test)(email_test(*(f"r{i}@example.com" for i in range(3))))
        return times

    assert clock.run(main()) == [0.0, pytest.approx(0.1, abs=1e-6), pytest.approx(0.2, abs=1e-6)], \
        "10 a second, one at a time"
