import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from contracts.enums import DeliveryStatus
from contracts.events import Recipient, SendDue
from contracts.steps import EmailContent
from mailer.addresses import parse_address
from mailer.domain import RetryPolicy, classify
from mailer.message import build_message

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
TO = parse_address("ada@example.com")
POLICY = RetryPolicy(initial_seconds=300, max_seconds=3600, lifetime_seconds=259200)


def outcome(code, attempt=1, first=NOW):
    return classify(code, "text", POLICY, attempt, first, NOW, random.Random(7))


def test_2xx_is_sent_and_5xx_fails_for_good():
    assert outcome(250).status is DeliveryStatus.SENT
    assert outcome(550).status is DeliveryStatus.FAILED and outcome(550).retry_at is None


@pytest.mark.parametrize("code", [421, 451, None])
def test_4xx_or_no_answer_is_deferred_with_backoff_and_jitter(code):
    first = outcome(code, attempt=1)
    assert first.status is DeliveryStatus.DEFERRED
    assert NOW + timedelta(seconds=150) <= first.retry_at <= NOW + timedelta(seconds=300)
    fifth = outcome(code, attempt=5)
    assert NOW + timedelta(seconds=1800) <= fifth.retry_at <= NOW + timedelta(seconds=3600)  # capped


def test_a_deferral_past_the_lifetime_fails():
    late = outcome(451, attempt=9, first=NOW - timedelta(days=3))
    assert late.status is DeliveryStatus.FAILED


def send(subject: str, first_name: str = "Ada") -> SendDue:
    return SendDue(
        send_id=uuid4(), campaign_id=uuid4(), run_id=uuid4(), step_index=0, due_at=NOW,
        recipient=Recipient(contact_id=uuid4(), email="ada@example.com", first_name=first_name),
        content=EmailContent(subject=subject, text="Hi {{ first_name }}", html="<p>Hi {{ first_name }}</p>"),
    )


def test_the_email_is_personalised_multipart_and_carries_one_click_unsubscribe():
    message = build_message(send("Hello {{ first_name }}"), TO, "News <news@example.com>", "https://x.test", "s")
    assert message["Subject"] == "Hello Ada"
    assert message.get_content_type() == "multipart/alternative"
    assert "Hi Ada" in message.get_body(("plain",)).get_content()
    assert message["List-Unsubscribe"].startswith("<https://x.test/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_subject_with_cr_lf_cannot_add_a_header():
    message = build_message(send("{{ first_name }}", "x\r\nBcc: victim@example.com"), TO, "n@example.com", "https://x", "s")
    headers = message.as_bytes().split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers and message["Bcc"] is None
    assert message["Subject"] == "x Bcc: victim@example.com"


def test_names_are_escaped_in_the_html_part():
    message = build_message(send("s", "<script>"), TO, "n@example.com", "https://x", "s")
    assert "&lt;script&gt;" in message.get_body(("html",)).get_content()
