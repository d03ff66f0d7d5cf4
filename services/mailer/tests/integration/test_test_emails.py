"""send_test on the real SMTP adapter and aiosmtpd: a test email arrives at each address
as the recipient would read it, "[Test] " before its subject, and a retry after a 4xx
sends only to the address the server had not taken."""

from uuid import uuid4

import pytest

from contracts.events import EmailTest, Recipient
from contracts.steps import EmailContent
from mailer import handlers
from mailer.adapters.smtp import SmtpPool
from mailer.domain import SmtpUnavailable
from mailer.email_tests import EmailTestsInFlight
from mailer.limits import SendingLimits
from mailer.settings import Settings
from servicekit.wiring import bind
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration


async def test_a_test_email_arrives_at_each_address_once_even_after_a_4xx():
    test = EmailTest(test_id=uuid4(), flow_id=uuid4(), step_index=1, to=["one@example.com", "two@example.com"],
                     recipient=Recipient(contact_id=uuid4(), email="ann@example.com", first_name="Ann"),
                     content=EmailContent(subject="Hello {{ first_name }}", text="Welcome, {{ first_name }}.",
                                          html='<p><a href="https://example.com/go">Go</a></p>'))
    with SmtpServer() as smtp:
        settings = Settings(smtp_port=smtp.port, smtp_connections=1, tracking_secret="integration-secret",
                            mail_from="News <news@campaigns.example>")
        pool = SmtpPool(settings)
        send_test = bind(handlers.send_test, {"smtp": pool, "limits": SendingLimits(0, 0, 16),
                                              "tests_in_flight": EmailTestsInFlight(), "settings": settings})
        try:
            smtp.handler.answer_next("451 4.3.0 try again later")  # the first DATA: one address waits
            with pytest.raises(SmtpUnavailable):
                await send_test(test)
            assert len(smtp.received) == 1
            await send_test(test)  # the consumer loop's retry
        finally:
            await pool.close()
    assert sorted(to for r in smtp.received for to in r.envelope_to) == ["one@example.com", "two@example.com"]
    assert sum(smtp.attempts.values()) == 3, "one refused, then each address once"
    for received in smtp.received:
        index = test.to.index(received.envelope_to[0])
        assert received.subject == "[Test] Hello Ann"
        assert received.message["Message-ID"] == f"<{test.test_id}.{index}@campaigns.example>"
        assert received.message["List-Unsubscribe"] is None
        assert received.text().strip() == "Welcome, Ann."
        assert 'href="https://example.com/go"' in received.message.get_body(("html",)).get_content()
