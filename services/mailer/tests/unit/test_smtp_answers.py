"""How the adapter reads aiosmtplib's errors: the answer that ended a transaction, at its stage."""

import aiosmtplib
import pytest

from mailer.adapters.smtp import answer_of
from mailer.domain import SmtpAnswer, Stage


@pytest.mark.parametrize(("error", "at", "expected"), [
    (aiosmtplib.SMTPConnectResponseError(554, "5.3.2 go away"), Stage.CONNECT, SmtpAnswer(Stage.GREETING, 554, "5.3.2 go away")),
    (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad"), Stage.CONNECT, SmtpAnswer(Stage.AUTH, 535, "5.7.8 bad")),
    (aiosmtplib.SMTPHeloError(501, "no"), Stage.CONNECT, SmtpAnswer(Stage.EHLO, 501, "no")),
    (aiosmtplib.SMTPResponseException(454, "TLS not available"), Stage.CONNECT,
     SmtpAnswer(Stage.STARTTLS, 454, "TLS not available")),
    (aiosmtplib.SMTPSenderRefused(550, "blocked", "news@example.com"), Stage.MAIL_FROM,
     SmtpAnswer(Stage.MAIL_FROM, 550, "blocked")),
    (aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", "a@example.com"), Stage.RCPT_TO,
     SmtpAnswer(Stage.RCPT_TO, 550, "5.1.1 unknown")),
    (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "greylisted", "a@example.com")]),
     Stage.RCPT_TO, SmtpAnswer(Stage.RCPT_TO, 450, "greylisted")),
    (aiosmtplib.SMTPDataError(554, "spam"), Stage.DATA, SmtpAnswer(Stage.DATA, 554, "spam")),
])
def test_each_refusal_is_the_answer_at_its_stage(error, at, expected):
    assert answer_of(error, at) == expected


def test_no_answer_has_no_code_and_during_data_the_message_may_have_gone():
    refused = answer_of(ConnectionRefusedError(111, "refused"), Stage.CONNECT)
    assert (refused.stage, refused.code, refused.handed_over) == (Stage.CONNECT, None, False)
    lost = answer_of(aiosmtplib.SMTPReadTimeoutError("timed out"), Stage.DATA)
    assert (lost.stage, lost.code, lost.handed_over) == (Stage.DATA, None, True)
    gone = answer_of(aiosmtplib.SMTPServerDisconnected("EOF"), Stage.MAIL_FROM)
    assert (gone.code, gone.handed_over) == (None, False)


def test_a_message_goes_with_crlf_line_ends_its_leading_dots_doubled_and_the_end():
    from mailer.adapters.pipeline import stuffed
    assert stuffed(b"a\r\n.b\r\n..c\r\nd") == b"a\r\n..b\r\n...c\r\nd\r\n.\r\n"
    assert stuffed(b".x\nlone\rends\r\n") == b"..x\r\nlone\r\nends\r\n.\r\n"
    assert stuffed(b"plain\r\n") == b"plain\r\n.\r\n"
