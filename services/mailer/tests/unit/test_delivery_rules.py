import random
from datetime import UTC, datetime, timedelta

import pytest

from contracts.enums import DeliveryStatus
from mailer.domain import RetryPolicy, SmtpAnswer, Stage, Unsent, classify, is_the_servers, settle

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
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


@pytest.mark.parametrize(("stage", "code"), [
    (Stage.CONNECT, None), (Stage.GREETING, 554), (Stage.GREETING, 421), (Stage.EHLO, 502),
    (Stage.STARTTLS, 454), (Stage.AUTH, 535), (Stage.AUTH, 454), (Stage.MAIL_FROM, 550), (Stage.MAIL_FROM, 451),
    (Stage.RCPT_TO, 421), (Stage.DATA, 421), (Stage.RCPT_TO, None), (Stage.DATA, None),
])
def test_refusals_before_the_recipient_and_no_answer_are_the_servers_trouble(stage, code):
    answer = SmtpAnswer(stage, code, "text")
    assert is_the_servers(answer)
    assert settle(answer, POLICY, 1, NOW, NOW, random.Random(7)) == Unsent(str(answer))


@pytest.mark.parametrize(("stage", "code", "status"), [
    (Stage.RCPT_TO, 550, DeliveryStatus.FAILED), (Stage.RCPT_TO, 450, DeliveryStatus.DEFERRED),
    (Stage.DATA, 554, DeliveryStatus.FAILED), (Stage.DATA, 452, DeliveryStatus.DEFERRED),
    (Stage.DATA, 250, DeliveryStatus.SENT),
])
def test_answers_to_rcpt_to_and_data_are_the_recipients_or_the_messages(stage, code, status):
    answer = SmtpAnswer(stage, code, "text")
    assert not is_the_servers(answer)
    outcome = settle(answer, POLICY, 1, NOW, NOW, random.Random(7))
    assert (outcome.status, outcome.smtp_code, outcome.smtp_message) == (status, code, "text")


def test_a_message_whose_answer_never_came_may_have_been_delivered():
    lost = settle(SmtpAnswer(Stage.DATA, None, "TimeoutError()", handed_over=True), POLICY, 1, NOW, NOW,
                  random.Random(7))
    assert lost == Unsent("data: no answer (TimeoutError())", maybe_delivered=True)
    assert str(SmtpAnswer(Stage.AUTH, 535, "5.7.8 no")) == "auth: 535 5.7.8 no"
